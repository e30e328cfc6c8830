"""The loss pieces of CCFace (:mod:`edgereid.methods.ccface`; reconstructed from the paper's abstract, so each is an
assumption with a switch): the adaptive angular penalty, the shared-proxy margin softmax, the two readings of the
asymmetric cross-resolution term (a BYOL/SimSiam-style predictor, or FixMatch-style HR-prediction targets) and the
LR-LR repulsion (ours, not CCFace's)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from edgereid.errors import ConfigError

HR_BRANCHES = ("student", "teacher")
# what drives the per-sample margin (all readings of the abstract; the first is the default)
MARGIN_SOURCES = ("teacher_hr_score", "lr_size", "student_lr_cosine")
ASYMMETRIC_TERMS = ("predictor", "hr_prediction_target")


@dataclass(frozen=True)
class AdaptiveAngularPenalty:
    """Per-sample margin, monotone non-decreasing in the teacher's target score and clipped to [0, margin_max].

    The ramp runs from ``score_low`` to ``score_high``. With ``quantiles`` set, :meth:`fitted` places
    them at those quantiles of the teacher's scores on the training faces: a teacher scores its own
    training faces high (0.91-0.97 for the CoReFace teacher here), so fixed bounds such as 0.2-0.8 would
    give every sample the maximum margin and the penalty would not adapt at all."""

    margin_max: float = 0.4
    score_low: float = 0.2
    score_high: float = 0.8
    quantiles: tuple[float, ...] = (0.05, 0.95)
    adaptive: bool = True  # False: the constant ArcFace margin margin_max (the ablation)

    def __post_init__(self) -> None:
        if not self.score_low < self.score_high:
            raise ConfigError("the adaptive margin needs score_low < score_high",
                              got=f"{self.score_low} and {self.score_high}")
        if self.quantiles and (len(self.quantiles) != 2 or not 0 <= self.quantiles[0] < self.quantiles[1] <= 1):
            raise ConfigError("penalty.quantiles must be two increasing fractions", expected="e.g. [0.05, 0.95] or []",
                              got=repr(list(self.quantiles)))

    def fitted(self, teacher_scores: torch.Tensor) -> "AdaptiveAngularPenalty":
        """This penalty with its ramp placed on ``teacher_scores`` (unchanged when ``quantiles`` is empty)."""
        if not self.quantiles or not self.adaptive:
            return self
        low, high = (float(torch.quantile(teacher_scores.float(), q)) for q in self.quantiles)
        return dataclasses.replace(self, score_low=low, score_high=max(high, low + 1e-6), quantiles=())

    def __call__(self, teacher_score: torch.Tensor) -> torch.Tensor:
        if not self.adaptive:
            return torch.full_like(teacher_score, self.margin_max)
        ramp = (teacher_score - self.score_low) / (self.score_high - self.score_low)
        return self.margin_max * ramp.clamp(0.0, 1.0)


def shared_proxy_loss(embeddings: torch.Tensor, labels: torch.Tensor, proxies: torch.Tensor,
                      margins: torch.Tensor, scale: float) -> torch.Tensor:
    """Cross-entropy of ``scale * cos`` against fixed proxies, the target angle widened by ``margins``
    (per sample). Margin 0 is the normalised softmax over the proxies."""
    # in float32 even under autocast: the margin's acos/cos need it, and scatter needs one dtype
    with torch.autocast(embeddings.device.type, enabled=False):
        cos = (F.normalize(embeddings.float()) @ F.normalize(proxies.float()).T).clamp(-1 + 1e-7, 1 - 1e-7)
        target = cos.gather(1, labels[:, None])
        widened = torch.cos((torch.acos(target) + margins[:, None].float()).clamp(max=torch.pi))
        return F.cross_entropy(scale * cos.scatter(1, labels[:, None], widened), labels)


def cross_resolution_alignment(predicted_lr: torch.Tensor, hr_target: torch.Tensor) -> torch.Tensor:
    """``1 - cos(pred(z_lr), stopgrad(z_hr))``, averaged: only the LR side learns."""
    return (1.0 - F.cosine_similarity(predicted_lr, hr_target.detach(), dim=1)).mean()


def lr_repulsion(embeddings: torch.Tensor, labels: torch.Tensor, temperature: float = 2.0) -> torch.Tensor:
    """``log mean exp(t * cos_ij)`` over pairs of different identities: falls as they spread apart."""
    unit = F.normalize(embeddings)
    cos = unit @ unit.T
    different = labels[:, None] != labels[None, :]
    if not different.any():
        return embeddings.sum() * 0.0
    values = temperature * cos[different]
    return torch.logsumexp(values, 0) - np.log(values.numel())


class Predictor(nn.Module):
    """The LR branch's predictor (BYOL/SimSiam-style MLP); used in training only, never exported."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def hr_prediction_consistency(lr: torch.Tensor, hr_target: torch.Tensor, proxies: torch.Tensor, scale: float,
                              threshold: float) -> torch.Tensor:
    """FixMatch's reading of the asymmetric term: the stop-gradient HR embedding's prediction over the shared
    proxies, where confident (softmax of ``scale * cos`` at least ``threshold``), is the hard pseudo-label of the
    LR sample: ``mean_i 1[conf_i >= threshold] CE(scale * cos(lr_i, P), argmax_hr_i)`` (unconfident samples count
    as 0 in the mean, as FixMatch averages over the whole batch)."""
    unit_proxies = F.normalize(proxies)
    with torch.no_grad():
        confidence, pseudo = F.softmax(scale * F.normalize(hr_target.detach()) @ unit_proxies.T, dim=1).max(1)
    ce = F.cross_entropy(scale * F.normalize(lr) @ unit_proxies.T, pseudo, reduction="none")
    return (ce * (confidence >= threshold).to(ce.dtype)).mean()
