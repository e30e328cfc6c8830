"""CCFace: classification-consistency distillation for low-resolution faces (Saadabadi et al., IJCB 2023).

**Reconstructed from the paper's abstract** (no code or paper body was available; design doc
``methods.md`` §4): every equation below is an assumption, and every assumption is a named parameter.

A frozen high-resolution teacher ``g`` with class proxies ``P`` (its margin-softmax classifier) teaches
a low-resolution student ``f``:

- **Shared proxies:** the student is classified against the teacher's ``P``, frozen and normalised:
  ``cos t_y = <f(x_lr)^, P_y^>``.
- **Adaptive angular penalty:** ``s * cos(t_y + m_i)`` with a per-sample margin
  ``m_i = margin_max * clip((s_i - score_low) / (score_high - score_low), 0, 1)``, where
  ``s_i = <g(x_hr)^, P_y^>`` is the teacher's target score: faces the teacher itself finds hard get
  a smaller margin (the abstract's "reduces overfitting on low-resolution samples").
- **Asymmetric cross-resolution term:** a predictor on the LR embedding is pulled (cosine) towards a
  stop-gradient HR embedding (``hr_branch``: the student on the clean HR picture, SimSiam-style, or
  the teacher), and LR embeddings of different identities repel each other
  (``log mean exp(t * cos)`` over different-identity pairs) so LR faces do not collapse into one
  "low-quality" cluster.

With ``hr_branch: student`` the HR target is the student itself on the clean HR face, run without
gradient but in training mode: its BatchNorm uses the HR batch's statistics and its running statistics
see both HR and LR batches (as in SimSiam-style training; the deployed model serves both).

``feature_kd_weight`` (default 0) adds what the design recommends for edge students on top of CCFace
(``methods.md`` §5.6, ours, not the paper's): the LR embedding pulled straight onto the teacher's HR
embedding, so the student lives in the teacher's space.

LR inputs come from the world's degradation (down-sampling to ``lr_sizes`` px, blur, noise, JPEG)
and are aligned into the student's input exactly as the runtime aligns them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from edgereid.card import ModelCard
from edgereid.data.face_sets import FaceData, align_faces, check_lr_sizes, degrade_faces, render_faces
from edgereid.errors import CheckpointError, ConfigError
from edgereid.methods import distributed
from edgereid.methods.batches import label_map, shuffled_batches
from edgereid.methods.run_config import DistillRun
from edgereid.methods.trainer import finish_run, fit
from edgereid.models import create_model
from edgereid.ops.preprocess import normalise_batch

HR_BRANCHES = ("student", "teacher")


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
    cos = (F.normalize(embeddings) @ F.normalize(proxies).T).clamp(-1 + 1e-7, 1 - 1e-7)
    target = cos.gather(1, labels[:, None])
    widened = torch.cos((torch.acos(target) + margins[:, None]).clamp(max=torch.pi))
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


@dataclass(frozen=True, kw_only=True)
class CCFaceConfig(DistillRun):
    """``edgereid distill`` with ``method: ccface``: ``teacher`` is a face checkpoint whose
    ``classifier`` holds its proxies (made by ``edgereid train`` with ``method: arcface|coreface``)."""

    METHODS: ClassVar[tuple[str, ...]] = ("ccface",)

    teacher: str
    data: FaceData = field(default_factory=FaceData)
    batch_size: int = 128
    lr_sizes: tuple[int, ...] = (8, 32)
    scale: float = 32.0
    penalty: AdaptiveAngularPenalty = field(default_factory=AdaptiveAngularPenalty)
    hr_branch: str = "student"
    align_weight: float = 1.0
    repulsion_weight: float = 0.1
    repulsion_temperature: float = 2.0
    predictor_hidden: int = 64
    feature_kd_weight: float = 0.0  # ours (design methods.md §5.6), not CCFace: 1 - cos(f(x_lr), g(x_hr))

    def __post_init__(self) -> None:
        check_lr_sizes(self.lr_sizes)
        if self.hr_branch not in HR_BRANCHES:
            raise ConfigError("unknown hr_branch", expected=str(HR_BRANCHES), got=repr(self.hr_branch))


def load_face_teacher(path: str | Path) -> tuple[nn.Module, ModelCard, torch.Tensor]:
    """The frozen teacher, its card and its proxies ``[C, d]``; errors say what is missing."""
    from edgereid.models.checkpoint import load_checkpoint

    teacher, card = load_checkpoint(path)
    if card.task != "face":
        raise CheckpointError(f"{path} is not a face model", got=f"task {card.task}",
                              fix="give a checkpoint made by `edgereid train` with method arcface or coreface")
    if getattr(teacher, "classifier", None) is None:
        raise CheckpointError(f"{path} has no classifier proxies to share",
                              fix="train the teacher with `edgereid train` (method arcface or coreface)")
    teacher.eval().requires_grad_(False)
    return teacher, card, teacher.classifier.weight.detach()


def check_teacher_data(teacher_path: str | Path, data: FaceData) -> None:
    """The shared proxies belong to the teacher's training identities: the distillation must render the
    same world (seed) and identities, or every label points at another person's proxy."""
    import json

    from edgereid.models.checkpoint import read_checkpoint_header

    recorded = json.loads(read_checkpoint_header(teacher_path).get("edgereid.config", "{}")).get("data") or {}
    mismatched = {key: (recorded[key], getattr(data, key)) for key in ("seed", "identities")
                  if key in recorded and recorded[key] != getattr(data, key)}
    if mismatched:
        wanted = ", ".join(f"{key}: {theirs}" for key, (theirs, _) in mismatched.items())
        raise ConfigError(f"the teacher {teacher_path} was trained on other identities than this distillation renders",
                          expected=wanted, got=", ".join(f"{key}: {ours}" for key, (_, ours) in mismatched.items()),
                          fix=f"set data: {{{wanted}}} in the distill config (the proxies are those identities')")


def check_student_fits(student: nn.Module, teacher_dim: int, student_name: str) -> None:
    """The shared proxies only make sense in one embedding space: dimensions must agree."""
    if student.embedding_dim != teacher_dim:
        raise ConfigError(f"student '{student_name}' embeds in {student.embedding_dim} dimensions, the teacher in "
                          f"{teacher_dim}", fix=f"set student_args: {{embedding_dim: {teacher_dim}}}")


class CCFaceObjective:
    """The loss terms of one distillation step."""

    def __init__(self, student: nn.Module, predictor: Predictor, proxies: torch.Tensor,
                 config: CCFaceConfig) -> None:
        self.student, self.predictor, self.proxies, self.config = student, predictor, proxies, config

    def __call__(self, lr_images: torch.Tensor, hr_target: torch.Tensor, teacher_score: torch.Tensor,
                 labels: torch.Tensor, teacher_hr: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        c = self.config
        lr = self.student.features(lr_images)
        terms = {"proxy": shared_proxy_loss(lr, labels, self.proxies, c.penalty(teacher_score), c.scale)}
        if c.feature_kd_weight and teacher_hr is not None:
            terms["feature_kd"] = c.feature_kd_weight * cross_resolution_alignment(lr, teacher_hr)
        if c.align_weight:
            terms["align"] = c.align_weight * cross_resolution_alignment(self.predictor(lr), hr_target)
        if c.repulsion_weight:
            terms["repulsion"] = c.repulsion_weight * lr_repulsion(lr, labels, c.repulsion_temperature)
        return terms


def _embed(model: nn.Module, inputs: np.ndarray, spec, batch: int = 256) -> torch.Tensor:
    """Unnormalised embeddings of ``inputs`` computed where ``model`` lives, returned on the CPU."""
    device = next(model.parameters()).device
    with torch.no_grad():
        return torch.cat([model.features(torch.from_numpy(normalise_batch(inputs[i:i + batch], spec)).to(device)).cpu()
                          for i in range(0, len(inputs), batch)])


def distill(config: CCFaceConfig, config_dict: dict[str, Any]) -> Path:
    """Distil the teacher into the LR student, save the run, export ONNX; returns the checkpoint."""
    torch.manual_seed(config.optim.seed)
    teacher, teacher_card, proxies = load_face_teacher(config.teacher)
    check_teacher_data(config.teacher, config.data)
    student = create_model(config.student, **config.student_args)
    check_student_fits(student, proxies.shape[1], config.student)
    renders = render_faces(config.data.seed, config.data.identities, config.data.per_identity)
    labels, num_classes = label_map(renders.pids)
    if num_classes != len(proxies):
        raise ConfigError(f"the teacher has {len(proxies)} proxies but the data has {num_classes} identities",
                          fix="use the teacher's training data section (seed and identities) in the distill config")
    teacher_spec = teacher_card.input
    device = distributed.device()  # its own GPU under torchrun (cuda:LOCAL_RANK) when there is one, else the CPU
    teacher.to(device)
    teacher_hr = F.normalize(_embed(teacher, align_faces(renders.images, renders.landmarks, teacher_spec),
                                    teacher_spec))
    target = torch.from_numpy(labels)
    teacher_score = (teacher_hr * F.normalize(proxies)[target]).sum(1)
    penalty = config.penalty.fitted(teacher_score)
    config = dataclasses.replace(config, penalty=penalty)
    config_dict = {**config_dict, "penalty_fitted": dataclasses.asdict(penalty)}
    margins = penalty(teacher_score)
    print(f"adaptive margin: ramp {penalty.score_low:.4f}..{penalty.score_high:.4f} of the teacher's score; over the "
          f"training faces mean {float(margins.mean()):.3f}, {float((margins == 0).float().mean()):.1%} at 0, "
          f"{float((margins >= penalty.margin_max).float().mean()):.1%} at {penalty.margin_max}")
    spec = student.card(config.student).input
    student_hr_inputs = align_faces(renders.images, renders.landmarks, spec)
    predictor = Predictor(student.embedding_dim, config.predictor_hidden)
    student.to(device)
    predictor.to(device)
    objective = CCFaceObjective(student, predictor, proxies.to(device), config)
    rng = np.random.default_rng(config.optim.seed)
    on_device = {name: value.to(device) for name, value in
                 (("hr", teacher_hr), ("score", teacher_score), ("target", target))}

    def step(index: np.ndarray) -> dict[str, torch.Tensor]:
        small, landmarks = degrade_faces(renders, index, tuple(config.lr_sizes), rng)
        lr_images = torch.from_numpy(normalise_batch(align_faces(small, landmarks, spec), spec)).to(device)
        rows = torch.from_numpy(index).to(device)
        if config.hr_branch == "teacher":
            hr_target = on_device["hr"][rows]
        else:
            with torch.no_grad():
                hr_target = student.features(
                    torch.from_numpy(normalise_batch(student_hr_inputs[index], spec)).to(device))
        return objective(lr_images, hr_target, on_device["score"][rows], on_device["target"][rows],
                         on_device["hr"][rows])

    steps = len(renders) // config.batch_size
    history = fit(student, list(student.parameters()) + list(predictor.parameters()),
                  lambda _: shuffled_batches(len(renders), config.batch_size, rng),
                  step, config.optim, steps, f"ccface {config.student}")
    student.cpu()
    return finish_run(student, student.card(config.student), config.out, config_dict, history,
                      f"{config.student} (CCFace from {teacher_card.name})", config.export)
