"""CoReFace: sample-guided contrastive regularisation for face recognition (Song & Wang, arXiv 2304.11668).

Ported from the official code (``IsidoreSong/CoreFace``; see ``docs/methods.md`` §5 of the design):

- **Embedding augmentation:** one trunk forward, two independent dropout masks on the pre-embedding
  feature, the shared embedding layer + BN on both, giving views ``x1, x2`` of each face (no image
  augmentation beyond a horizontal flip).
- **Contrastive regularisation:** ``S_ij = clamp(<x1_i^, x2_j^>, -1, 1)``; view 1 is paired only with
  view 2 (no view1-view1 or view2-view2 negatives); same-identity off-diagonal entries are *set to 0*
  (not removed); an adaptive margin ``m = ema_new * mean_i(S_ii - max_j!=i S~_ij) + (1 - ema_new) * m``
  (``ema_new = 0.99`` as in the official code, where the *new* batch value dominates), and
  ``L_con = CE(s * (S - m I), i)`` with ``s = 64``.
- **Total:** ``0.5 ArcFace(x1) + 0.5 ArcFace(x2) + 0.05 L_con``; two stages (single view with
  dropout 0.4, then two views with dropout 0.6 from ``stage2_epoch``); gradients clipped on the
  backbone only.

The paper-scale configs (``samples/configs/coreface_ms1mv2_iresnet100.yaml``, ``..._webface_iresnet50.yaml``)
follow the official set-up: IResNet on 112x112 faces (dropout on the flattened 7x7 map, embedding BN weight
fixed at 1), SGD 0.1 with momentum 0.9 and step decay, per-view BN, scale 64 and margin 0.5. The world configs
differ for CPU scale: the trunk is a MobileFaceNet (``face_teacher_64``) on 64x64 synthetic faces, dropout acts
on the pooled pre-embedding feature (after the global depthwise conv), the optimiser is AdamW + cosine, the
embedding BN's weight is trained, both views pass the embedding BN in one call (batch statistics over 2B rather
than B per view). Either way the ArcFace head falls back to ``cos(theta) - m sin(m)`` past ``theta = pi - m``
(insightface's variant, not the plain one).

``method: arcface`` runs the same trainer with the contrastive term off: the official
"ArcFace + dropout" baseline, i.e. CoReFace's own ablation. With ``lr_sizes`` set, the inputs are
degraded low-resolution copies, which gives the "student trained directly on LR" baseline.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch.nn import functional as F

from edgereid.data.face_sets import FaceData, align_faces, check_lr_sizes, degrade_faces, training_faces
from edgereid.methods.batches import flip_half, label_map, shuffled_batches
from edgereid.methods.losses import ArcMarginHead
from edgereid.methods.run_config import TrainRun
from edgereid.methods.trainer import finish_run, fit
from edgereid.methods import distributed
from edgereid.models import create_model
from edgereid.ops.preprocess import normalise_batch

METHODS = ("arcface", "coreface")


@dataclass(frozen=True)
class DropoutSchedule:
    """CoReFace's two stages: ``(views, dropout)`` = (1, ``stage1``) before ``stage2_epoch``, then (2, ``stage2``)."""

    stage2_epoch: int = 7
    stage1: float = 0.4
    stage2: float = 0.6

    def stage(self, epoch: int) -> tuple[int, float]:
        return (1, self.stage1) if epoch < self.stage2_epoch else (2, self.stage2)


class AdaptiveMargin:
    """The contrastive margin, updated per batch as ``ema_new * batch + (1 - ema_new) * previous`` from 0."""

    def __init__(self, ema_new: float = 0.99) -> None:
        self.ema_new = ema_new
        self.value = 0.0

    def update(self, batch_margin: float) -> float:
        self.value = self.ema_new * batch_margin + (1.0 - self.ema_new) * self.value
        return self.value


def pair_similarity(view1: torch.Tensor, view2: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``S`` (B x B): cosine of view 1 of face i with view 2 of face j, same-identity off-diagonal set to 0."""
    sim = (F.normalize(view1) @ F.normalize(view2).T).clamp(-1.0, 1.0)
    same = labels[:, None] == labels[None, :]
    off_diagonal_same = same & ~torch.eye(len(labels), dtype=torch.bool, device=sim.device)
    return sim.masked_fill(off_diagonal_same, 0.0)


def batch_margin(similarity: torch.Tensor) -> float:
    """``mean_i(S_ii - max_{j != i} S~_ij)`` with the diagonal of ``S~`` zeroed (so the max is >= 0)."""
    with torch.no_grad():
        off = similarity.clone()
        off.fill_diagonal_(0.0)
        return float((similarity.diagonal() - off.amax(dim=1)).mean())


def contrastive_loss(similarity: torch.Tensor, margin: float, scale: float = 64.0) -> torch.Tensor:
    """``CE(scale * (S - margin * I), target = i)``: each face's view 1 must pick its own view 2."""
    eye = torch.eye(len(similarity), dtype=similarity.dtype, device=similarity.device)
    targets = torch.arange(len(similarity), device=similarity.device)
    return F.cross_entropy(scale * (similarity - margin * eye), targets)


@dataclass(frozen=True, kw_only=True)
class FaceMarginConfig(TrainRun):
    """An ArcFace or CoReFace run (``edgereid train``, ``method: arcface|coreface``) on rendered faces or a real
    set (``data.source``, :mod:`edgereid.data.face_training`).

    ``lr_sizes`` (e.g. ``[8, 32]``) trains on low-resolution copies degraded to a random size in that
    range instead of the high-resolution faces. ``per_view_bn``: each dropout view passes the embedding BN on
    its own (the official double forward; default off: both views in one call)."""

    METHODS: ClassVar[tuple[str, ...]] = METHODS

    data: FaceData = field(default_factory=FaceData)
    batch_size: int = 128
    arcface_scale: float = 64.0
    arcface_margin: float = 0.5
    contrastive_weight: float = 0.05
    contrastive_scale: float = 64.0
    ema_new: float = 0.99
    dropout: DropoutSchedule = field(default_factory=DropoutSchedule)
    lr_sizes: tuple[int, ...] = ()
    per_view_bn: bool = False

    def __post_init__(self) -> None:
        check_lr_sizes(self.lr_sizes, allow_empty=True)


class CoReFaceObjective:
    """The per-batch loss terms of one training step, given the epoch (which picks the stage)."""

    def __init__(self, model: torch.nn.Module, head: ArcMarginHead, config: FaceMarginConfig) -> None:
        self.model, self.head, self.config = model, head, config
        self.margin = AdaptiveMargin(config.ema_new)
        self.contrastive = config.method == "coreface" and config.contrastive_weight > 0

    def __call__(self, images: torch.Tensor, labels: torch.Tensor, epoch: int) -> dict[str, torch.Tensor]:
        views, dropout = self.config.dropout.stage(epoch)
        pre = self.model.pre_embedding(images)
        if views == 1 or not self.contrastive:  # the ArcFace + dropout baseline: one view, the stage's dropout
            return {"arcface": self.head(self.model.embedding_head(F.dropout(pre, dropout, training=True)), labels)}
        first, second = F.dropout(pre, dropout, training=True), F.dropout(pre, dropout, training=True)
        if self.config.per_view_bn:  # the official double forward: each view's batch statistics of its own
            view1, view2 = self.model.embedding_head(first), self.model.embedding_head(second)
        else:
            view1, view2 = self.model.embedding_head(torch.cat([first, second])).chunk(2)
        terms = {"arcface": 0.5 * self.head(view1, labels) + 0.5 * self.head(view2, labels)}
        if self.contrastive:
            similarity = pair_similarity(view1, view2, labels)
            margin = self.margin.update(batch_margin(similarity))
            terms["contrastive"] = self.config.contrastive_weight * contrastive_loss(
                similarity, margin, self.config.contrastive_scale)
        return terms


def train(config: FaceMarginConfig, config_dict: dict[str, Any]) -> Path:
    """Train the configured face model, save the run (proxies in ``classifier``), export ONNX."""
    torch.manual_seed(config.optim.seed)
    renders = training_faces(config.data)
    labels, num_classes = label_map(renders.pids)
    model = create_model(config.model, **{**config.model_args, "num_classes": num_classes})
    spec = model.card(config.model).input
    head = ArcMarginHead(model.embedding_dim, num_classes, config.arcface_scale, config.arcface_margin)
    objective = CoReFaceObjective(model, head, config)
    rng = np.random.default_rng(config.optim.seed)
    device = distributed.device()  # its own GPU under torchrun (cuda:LOCAL_RANK) when there is one, else the CPU
    model.to(device)
    head.to(device)

    def inputs(index: np.ndarray) -> np.ndarray:
        if not config.lr_sizes:
            return align_faces(renders.images[index], renders.landmarks[index], spec)
        small, landmarks = degrade_faces(renders, index, tuple(config.lr_sizes), rng)
        return align_faces(small, landmarks, spec)

    def step(batch: tuple[int, np.ndarray]) -> dict[str, torch.Tensor]:
        epoch, index = batch
        images = inputs(index)
        flip_half(images, rng)
        return objective(torch.from_numpy(normalise_batch(images, spec)).to(device),
                         torch.from_numpy(labels[index]).to(device), epoch)

    steps = len(renders) // config.batch_size
    backbone = [p for name, p in model.named_parameters() if not name.startswith("classifier.")]
    history = fit(model, backbone + list(head.parameters()),
                  lambda epoch: ((epoch, index) for index in shuffled_batches(len(renders), config.batch_size, rng)),
                  step, config.optim, steps, f"{config.method} {config.model}", clip_params=backbone)
    with torch.no_grad():
        model.classifier.weight.copy_(head.weight)
    model.cpu()
    return finish_run(model, model.card(config.model), config.out, config_dict, history,
                      f"{config.model} ({config.method})", config.export)
