"""AIO's VA and FB losses (paper re-implementation; weights and temperature are this SDK's, the paper's
are not known).

- VA: cross-entropy of the attribute-word classifier at the masked caption positions only.
- FB: a supervised contrastive loss that binds a non-RGB modality to RGB: each IR / sketch / text
  embedding is scored against the batch's RGB embeddings, every RGB embedding of the same identity is a
  positive, the others negatives. RGB is the anchor: its embeddings are detached here, so binding moves
  the other modalities toward RGB rather than RGB toward them (RGB features still share the BNNeck's
  batch statistics with the other modalities; our choice: the summaries only say the other modalities
  are pulled toward RGB). An IR or sketch image is not scored against the RGB crop it was made from
  (``sources``): binding a view to its own source teaches silhouette and background matching, not
  identity (our choice; measured on the world, see the README).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from edgereid.methods.aio.captions import IGNORE


def masked_attribute_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean CE over positions whose target is not ``IGNORE``; ``logits`` ``[B, L, V]``, ``targets`` ``[B, L]``."""
    targets = targets.to(logits.device)
    if not (targets != IGNORE).any():
        return logits.sum() * 0.0
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORE)


def feature_binding_loss(other: torch.Tensor, rgb: torch.Tensor, labels: torch.Tensor,
                         temperature: float = 0.1, sources: torch.Tensor | None = None) -> torch.Tensor:
    """Supervised contrastive loss of ``other`` ``[B, D]`` against the detached ``rgb`` ``[B, D]``
    anchors: mean over positives of ``-log softmax(cos / T)``, averaged over the samples that have a
    positive. ``sources`` ``[B]``: the crop each row was made from; pairs made from the same crop are
    left out (neither positive nor negative)."""
    scores = F.normalize(other, dim=1) @ F.normalize(rgb.detach(), dim=1).t() / temperature
    positive = labels[:, None] == labels[None, :]
    if sources is not None:
        sources = sources.to(scores.device)
        same_crop = sources[:, None] == sources[None, :]
        scores = scores.masked_fill(same_crop, float("-inf"))
        positive = positive & ~same_crop
    log_probability = F.log_softmax(scores, dim=1).masked_fill(~positive, 0.0)
    has_positive = positive.any(1)
    per_sample = -log_probability.sum(1)[has_positive] / positive.sum(1)[has_positive]
    return per_sample.mean() if has_positive.any() else scores.sum() * 0.0
