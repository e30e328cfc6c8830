"""CCFace: classification-consistency distillation for low-resolution faces (Saadabadi et al., IJCB 2023).

**Reconstructed from the paper's abstract** (no code or paper body was available; design doc
``methods.md`` §4): every equation below is an assumption, and every assumption is a named parameter.

A frozen high-resolution teacher ``g`` with class proxies ``P`` (its margin-softmax classifier) teaches
a low-resolution student ``f``:

- **Shared proxies:** the student is classified against the teacher's ``P``, frozen and normalised:
  ``cos t_y = <f(x_lr)^, P_y^>``.
- **Adaptive angular penalty:** ``s * cos(t_y + m_i)`` with a per-sample margin
  ``m_i = margin_max * clip((s_i - score_low) / (score_high - score_low), 0, 1)``. What ``s_i`` is, is the
  reconstruction's biggest guess, so it is a switch, ``margin_from``:
  ``teacher_hr_score`` (default): the teacher's target score ``<g(x_hr)^, P_y^>`` on the clean HR face, the ramp on
  its quantiles: faces the teacher finds hard get a smaller margin; an 8-px and a 32-px copy of one face get the
  same margin. ``lr_size``: the LR face's size, 0 at the smallest of ``lr_sizes`` rising to ``margin_max`` at the
  largest (the abstract ties the penalty to low-resolution samples). ``student_lr_cosine``: the student's own
  cosine to its target proxy on the LR face (no gradient), ramped on each batch's quantiles (AdaFace-like).
- **Asymmetric cross-resolution term** (``asymmetric``): ``predictor`` (default): a BYOL/SimSiam-style predictor on
  the LR embedding is pulled (cosine) towards a stop-gradient HR embedding (``hr_branch``: the student on the clean
  HR picture, or the teacher); ``hr_prediction_target``: FixMatch-style, the HR embedding's confident prediction
  over the proxies (softmax >= ``pseudo_label_threshold``) is the LR sample's hard pseudo-label. The abstract says
  "semi-supervised" and "asymmetric", which both readings fit.
- **LR-LR repulsion** (``repulsion_weight``; **ours, not CCFace's**): LR embeddings of different identities repel
  (``log mean exp(t * cos)`` over different-identity pairs) so LR faces do not collapse into one "low-quality"
  cluster. ``samples/configs/ccface_faithful.yaml`` sets it to 0.
- **HR samples** (``hr_fraction``): the share of each batch fed undegraded (the abstract says HR performance is
  maintained; with 0, the default, every sample is degraded and HR faces only feed the targets).

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
from typing import Any, Callable, ClassVar

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from edgereid.card import ModelCard
from edgereid.data.face_sets import FaceData, align_faces, check_lr_sizes, degrade_faces, training_faces
from edgereid.errors import CheckpointError, ConfigError
from edgereid.methods import distributed
from edgereid.methods.batches import label_map, shuffled_batches
from edgereid.methods.ccface_losses import (ASYMMETRIC_TERMS, HR_BRANCHES, MARGIN_SOURCES, AdaptiveAngularPenalty,
                                            Predictor, cross_resolution_alignment, hr_prediction_consistency,
                                            lr_repulsion, shared_proxy_loss)
from edgereid.methods.run_config import DistillRun
from edgereid.methods.trainer import finish_run, fit
from edgereid.models import create_model
from edgereid.ops.preprocess import normalise_batch


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
    margin_from: str = "teacher_hr_score"
    hr_fraction: float = 0.0
    asymmetric: str = "predictor"
    pseudo_label_threshold: float = 0.95

    def __post_init__(self) -> None:
        check_lr_sizes(self.lr_sizes)
        for key, value, allowed in (("hr_branch", self.hr_branch, HR_BRANCHES),
                                    ("margin_from", self.margin_from, MARGIN_SOURCES),
                                    ("asymmetric", self.asymmetric, ASYMMETRIC_TERMS)):
            if value not in allowed:
                raise ConfigError(f"unknown {key}", expected=" | ".join(allowed), got=repr(value))
        if not 0.0 <= self.hr_fraction < 1.0:
            raise ConfigError("hr_fraction is the share of undegraded samples", expected="0 <= hr_fraction < 1",
                              got=str(self.hr_fraction))


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
    recorded = {"source": "world", **recorded}  # runs from before data.source trained on the world
    keys = ("source", "seed", "identities") if data.source == "world" else ("source", "path")
    mismatched = {key: (recorded[key], getattr(data, key)) for key in keys
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
    """The loss terms of one distillation step. ``margin_signal`` is what ``margin_from`` names: the teacher's
    score on the clean HR face, or the LR face's size in pixels (``lr_size``); for ``student_lr_cosine`` it is
    ignored and the student's own cosine to its target proxy on the LR face (no gradient) is used, the ramp
    placed on that batch's quantiles."""

    def __init__(self, student: nn.Module, predictor: Predictor | None, proxies: torch.Tensor,
                 config: CCFaceConfig) -> None:
        self.student, self.predictor, self.proxies, self.config = student, predictor, proxies, config

    def margins(self, lr: torch.Tensor, margin_signal: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        c = self.config
        if c.margin_from != "student_lr_cosine":
            return c.penalty(margin_signal)
        with torch.no_grad():
            cosine = (F.normalize(lr) * F.normalize(self.proxies)[labels]).sum(1)
        quantiles = c.penalty.quantiles or (0.05, 0.95)
        return dataclasses.replace(c.penalty, quantiles=quantiles).fitted(cosine)(cosine)

    def __call__(self, lr_images: torch.Tensor, hr_target: torch.Tensor, margin_signal: torch.Tensor,
                 labels: torch.Tensor, teacher_hr: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        c = self.config
        lr = self.student.features(lr_images)
        terms = {"proxy": shared_proxy_loss(lr, labels, self.proxies, self.margins(lr, margin_signal, labels),
                                            c.scale)}
        if c.feature_kd_weight and teacher_hr is not None:
            terms["feature_kd"] = c.feature_kd_weight * cross_resolution_alignment(lr, teacher_hr)
        if c.align_weight and c.asymmetric == "predictor":
            terms["align"] = c.align_weight * cross_resolution_alignment(self.predictor(lr), hr_target)
        elif c.align_weight:
            terms["align"] = c.align_weight * hr_prediction_consistency(lr, hr_target, self.proxies, c.scale,
                                                                        c.pseudo_label_threshold)
        if c.repulsion_weight:
            terms["repulsion"] = c.repulsion_weight * lr_repulsion(lr, labels, c.repulsion_temperature)
        return terms


def _embed(model: nn.Module, inputs: Callable[[np.ndarray], np.ndarray], count: int, spec,
           batch: int = 256) -> torch.Tensor:
    """Unnormalised embeddings of the ``count`` model inputs ``inputs(rows)`` gives, computed ``batch`` at a time
    where ``model`` lives, returned on the CPU."""
    device = next(model.parameters()).device
    with torch.no_grad():
        return torch.cat([model.features(torch.from_numpy(normalise_batch(inputs(np.arange(i, min(i + batch, count))),
                                                                          spec)).to(device)).cpu()
                          for i in range(0, count, batch)])


def _placed_penalty(config: CCFaceConfig, teacher_score: torch.Tensor) -> AdaptiveAngularPenalty:
    """The penalty's ramp for ``margin_from``: on the teacher's scores (its quantiles), on the LR sizes (the
    smallest size gets 0, the largest the full margin), or left to each batch (``student_lr_cosine``); printed."""
    penalty = config.penalty
    if config.margin_from == "teacher_hr_score":
        penalty = penalty.fitted(teacher_score)
        margins = penalty(teacher_score)
        print(f"adaptive margin: ramp {penalty.score_low:.4f}..{penalty.score_high:.4f} of the teacher's score; over "
              f"the training faces mean {float(margins.mean()):.3f}, {float((margins == 0).float().mean()):.1%} at 0, "
              f"{float((margins >= penalty.margin_max).float().mean()):.1%} at {penalty.margin_max}")
    elif config.margin_from == "lr_size" and penalty.adaptive:
        low, high = min(config.lr_sizes), max(config.lr_sizes)
        penalty = dataclasses.replace(penalty, score_low=float(low), score_high=float(max(high, low + 1)), quantiles=())
        print(f"adaptive margin: 0 at {low} px rising to {penalty.margin_max} at {high} px and above")
    else:
        print("adaptive margin: from the student's own LR cosine, ramped on each batch's quantiles")
    return penalty


def distill(config: CCFaceConfig, config_dict: dict[str, Any]) -> Path:
    """Distil the teacher into the LR student, save the run, export ONNX; returns the checkpoint."""
    torch.manual_seed(config.optim.seed)
    teacher, teacher_card, proxies = load_face_teacher(config.teacher)
    check_teacher_data(config.teacher, config.data)
    student = create_model(config.student, **config.student_args)
    check_student_fits(student, proxies.shape[1], config.student)
    renders = training_faces(config.data)
    labels, num_classes = label_map(renders.pids)
    if num_classes != len(proxies):
        raise ConfigError(f"the teacher has {len(proxies)} proxies but the data has {num_classes} identities",
                          fix="use the teacher's training data section (seed and identities) in the distill config")
    teacher_spec = teacher_card.input
    device = distributed.device()  # its own GPU under torchrun (cuda:LOCAL_RANK) when there is one, else the CPU
    teacher.to(device)
    teacher_hr = F.normalize(_embed(teacher, lambda rows: align_faces(renders.images[rows], renders.landmarks[rows],
                                                                      teacher_spec), len(renders), teacher_spec))
    target = torch.from_numpy(labels)
    teacher_score = (teacher_hr * F.normalize(proxies)[target]).sum(1)
    penalty = _placed_penalty(config, teacher_score)
    config = dataclasses.replace(config, penalty=penalty)
    config_dict = {**config_dict, "penalty_fitted": dataclasses.asdict(penalty)}
    spec = student.card(config.student).input

    def student_hr_inputs(rows: np.ndarray) -> np.ndarray:
        return align_faces(renders.images[rows], renders.landmarks[rows], spec)

    predictor = Predictor(student.embedding_dim, config.predictor_hidden) if config.asymmetric == "predictor" else None
    student.to(device)
    trained = list(student.parameters()) + (list(predictor.to(device).parameters()) if predictor else [])
    objective = CCFaceObjective(student, predictor, proxies.to(device), config)
    rng = np.random.default_rng(config.optim.seed)
    on_device = {name: value.to(device) for name, value in
                 (("hr", teacher_hr), ("score", teacher_score), ("target", target))}

    def step(index: np.ndarray) -> dict[str, torch.Tensor]:
        small, landmarks = degrade_faces(renders, index, tuple(config.lr_sizes), rng)
        inputs = align_faces(small, landmarks, spec)
        sizes = np.array([image.shape[0] for image in small], np.float32)
        undegraded = rng.random(len(index)) < config.hr_fraction  # HR samples kept (the abstract's HR performance)
        if undegraded.any():
            inputs[undegraded] = student_hr_inputs(index[undegraded])
        sizes[undegraded] = renders.images.shape[1]
        lr_images = torch.from_numpy(normalise_batch(inputs, spec)).to(device)
        rows = torch.from_numpy(index).to(device)
        if config.hr_branch == "teacher":
            hr_target = on_device["hr"][rows]
        else:
            with torch.no_grad():
                hr_target = student.features(
                    torch.from_numpy(normalise_batch(student_hr_inputs(index), spec)).to(device))
        signal = on_device["score"][rows] if config.margin_from == "teacher_hr_score" \
            else torch.from_numpy(sizes).to(device)
        return objective(lr_images, hr_target, signal, on_device["target"][rows], on_device["hr"][rows])

    steps = len(renders) // config.batch_size
    history = fit(student, trained,
                  lambda _: shuffled_batches(len(renders), config.batch_size, rng),
                  step, config.optim, steps, f"ccface {config.student}")
    student.cpu()
    return finish_run(student, student.card(config.student), config.out, config_dict, history,
                      f"{config.student} (CCFace from {teacher_card.name})", config.export)
