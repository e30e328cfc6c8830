"""AIO's VA and FB losses (paper re-implementation; weights and temperature are this SDK's, the paper's
are not known).

- VA: cross-entropy of the attribute-word classifier at the masked caption positions only.
- FB: a supervised contrastive loss that binds a non-RGB modality to RGB: each IR / sketch / text
  embedding is scored against the batch's RGB embeddings, every RGB embedding of the same identity is a
  positive, the others negatives. RGB is the anchor: its embeddings are detached here, so binding moves
  the other modalities toward RGB and the RGB space is shaped by the identity loss alone (our choice;
  the summaries only say the other modalities are pulled toward RGB). When the IR or sketch image was made
  from the very RGB crop it is scored against (``paired``), that pair is left out: binding a crop to its
  own source teaches silhouette and background matching, not identity (our choice; measured on the
  world, see the README).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from edgereid.aio.captions import IGNORE


def masked_attribute_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean CE over positions whose target is not ``IGNORE``; ``logits`` ``[B, L, V]``, ``targets`` ``[B, L]``."""
    if not (targets != IGNORE).any():
        return logits.sum() * 0.0
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORE)


def feature_binding_loss(other: torch.Tensor, rgb: torch.Tensor, labels: torch.Tensor,
                         temperature: float = 0.1, paired: bool = False) -> torch.Tensor:
    """Supervised contrastive loss of ``other`` ``[B, D]`` against the detached ``rgb`` ``[B, D]``
    anchors: mean over positives of ``-log softmax(cos / T)``, averaged over the samples that have a
    positive. ``paired``: row ``i`` of both was made from the same crop, so that pair is excluded."""
    scores = F.normalize(other, dim=1) @ F.normalize(rgb.detach(), dim=1).t() / temperature
    positive = labels[:, None] == labels[None, :]
    if paired:
        own = torch.eye(len(labels), dtype=torch.bool)
        scores = scores.masked_fill(own, float("-inf"))
        positive = positive & ~own
    log_probability = F.log_softmax(scores, dim=1).masked_fill(~positive, 0.0)
    has_positive = positive.any(1)
    per_sample = -log_probability.sum(1)[has_positive] / positive.sum(1)[has_positive]
    return per_sample.mean() if has_positive.any() else scores.sum() * 0.0
