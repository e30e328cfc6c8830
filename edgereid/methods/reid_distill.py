"""``edgereid distill`` with ``method: reid_kd``: a compact ReID student distilled from a ReID teacher
(DCAC or any registry ReID checkpoint), ``methods.md`` §1.7 option A, or from one image branch of an AIO
teacher (``methods.md`` §2.4): with ``modality: ir`` the student sees the world's IR rendering of every
crop and learns the teacher's IR embedding of it, so an IR camera's student embeds into the same space
as the RGB student (the pipeline runs it on cameras declared ``ir``).

Losses: embedding regression (``1 - cos`` plus squared L2 between the unit embeddings), so the student
lives in the teacher's embedding space; a relational term (KL between the teacher's and the student's
softmax-normalised batch similarity rows); and the student's own label-smoothed ID loss.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch.nn import functional as F

from edgereid.card import ModelCard, Provenance, file_sha256
from edgereid.data.scene_crops import CropSet
from edgereid.errors import ConfigError
from edgereid.methods import distributed
from edgereid.methods.batches import flip_half, label_map, photometric_jitter, pk_batches
from edgereid.methods.losses import label_smoothed_ce
from edgereid.methods.reid_data import ReidDataKeys, dataset_folders
from edgereid.methods.run_config import DistillRun
from edgereid.methods.trainer import config_fingerprint, finish_run, fit
from edgereid.models import create_model
from edgereid.ops.preprocess import normalise_batch


@dataclass(frozen=True, kw_only=True)
class ReidDistillConfig(DistillRun, ReidDataKeys):
    """``data`` / ``dataset`` / ``train_cameras`` as in :class:`~edgereid.methods.reid_data.ReidDataKeys`;
    ``modality``: what the student's camera sees ("rgb", or "ir"/"sketch" rendered from the crops)."""

    METHODS: ClassVar[tuple[str, ...]] = ("reid_kd",)

    teacher: str
    modality: str = "rgb"
    batch_size: int = 32
    embed_weight: float = 1.0
    relation_weight: float = 1.0
    relation_temperature: float = 0.1
    id_weight: float = 1.0

    def validate(self, where: str) -> None:
        super().validate(where)
        from edgereid.methods.aio.model import IMAGE_MODALITIES

        dataset_folders(self.dataset)
        if self.modality not in IMAGE_MODALITIES:
            raise ConfigError(f"{where}: unknown modality", expected=" or ".join(IMAGE_MODALITIES),
                              got=repr(self.modality))


def load_teacher(path: str | Path, modality: str) -> tuple[torch.nn.Module, ModelCard]:
    """The frozen teacher as crops -> embeddings: a registry ReID checkpoint, or the ``modality`` branch
    of an AIO teacher."""
    from edgereid.methods.aio.checkpoint import is_aio_checkpoint, load_aio
    from edgereid.models.checkpoint import load_checkpoint

    if not is_aio_checkpoint(path):
        return load_checkpoint(path)
    from edgereid.methods.aio.export import ImageBranch, branch_card

    model = load_aio(path)
    return ImageBranch(model, modality), branch_card(model, modality, path)


def modality_crops(crops: CropSet, modality: str, seed: int) -> CropSet:
    """``crops`` as the world renders them in ``modality`` (unchanged for rgb)."""
    if modality == "rgb":
        return crops
    from edgereid.methods.aio.modalities import modality_images

    images = modality_images(crops.images, modality, "world", np.random.default_rng((seed, 17)))
    return crops.with_images(images)


def embedding_regression(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """``mean(1 - cos) + mean |s - t|^2`` of unit embeddings."""
    s, t = F.normalize(student, dim=1), F.normalize(teacher, dim=1)
    return (1 - (s * t).sum(1)).mean() + ((s - t) ** 2).sum(1).mean()


def relational_kd(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL between row-softmaxed batch cosine similarities (self-pairs excluded), teacher as target."""
    s, t = F.normalize(student, dim=1), F.normalize(teacher, dim=1)
    eye = torch.eye(len(s), dtype=torch.bool, device=s.device)
    s_sim = (s @ s.t() / temperature).masked_fill(eye, -1e4)
    t_sim = (t @ t.t() / temperature).masked_fill(eye, -1e4)
    return F.kl_div(F.log_softmax(s_sim, 1), F.log_softmax(t_sim, 1), log_target=True, reduction="batchmean")


@torch.no_grad()
def teacher_agreement(model, teacher, images: np.ndarray, teacher_images: np.ndarray, spec, teacher_spec) -> float:
    """Mean cosine between the student's and the teacher's embeddings of the same crops (eval mode)."""
    model.eval()
    device = next(model.parameters()).device
    student = model(torch.from_numpy(normalise_batch(images, spec)).to(device))
    target = teacher(torch.from_numpy(normalise_batch(teacher_images, teacher_spec)).to(device))
    model.train()
    return float(F.cosine_similarity(student, target).mean())


def distill(config: ReidDistillConfig, config_dict: dict[str, Any]) -> Path:
    """Train the student against the frozen teacher, save the run, export ONNX; returns the checkpoint."""
    torch.manual_seed(config.optim.seed)
    teacher, teacher_card = load_teacher(config.teacher, config.modality)
    teacher.eval().requires_grad_(False)
    probe = create_model(config.student, **config.student_args)
    if probe.embedding_dim != teacher_card.embedding_dim:
        raise ConfigError("student and teacher embeddings differ in size", expected=str(teacher_card.embedding_dim),
                          got=str(probe.embedding_dim), fix="set model_args.embedding_dim to the teacher's")
    spec, teacher_spec = probe.card(config.student).input, teacher_card.input
    crops = modality_crops(config.training_crops(spec),
                           config.modality, config.optim.seed)
    teacher_crops = crops if teacher_spec == spec else modality_crops(
        config.training_crops(teacher_spec), config.modality,
        config.optim.seed)
    labels, num_classes = label_map(crops.pids)
    model = create_model(config.student, **{**config.student_args, "num_classes": num_classes})
    device = distributed.device()
    model.to(device)
    teacher.to(device)
    rng = np.random.default_rng(config.optim.seed)
    sample_rng, _ = distributed.sample_randomness(rng, config.optim.seed)
    steps = len(crops) // config.batch_size

    def step(index: np.ndarray) -> dict[str, torch.Tensor]:
        images, teacher_images = crops.images[index], teacher_crops.images[index]
        flipped = flip_half(images, sample_rng)
        teacher_images[flipped] = teacher_images[flipped][:, :, ::-1]  # the same view for both
        jittered = photometric_jitter(images, sample_rng)
        feat = model.bnneck(model.features(torch.from_numpy(normalise_batch(jittered, spec)).to(device)))
        with torch.no_grad():
            target = teacher(torch.from_numpy(normalise_batch(teacher_images, teacher_spec)).to(device))
        identity = torch.from_numpy(labels[index]).to(device)
        return {"embed": config.embed_weight * embedding_regression(feat, target),
                "relation": config.relation_weight * relational_kd(feat, target, config.relation_temperature),
                "id": config.id_weight * label_smoothed_ce(model.classifier(feat), identity)}

    probe = rng.choice(len(crops), min(256, len(crops)), replace=False)
    start = teacher_agreement(model, teacher, crops.images[probe], teacher_crops.images[probe], spec, teacher_spec)
    history = fit(model, model.parameters(),
                  lambda _: pk_batches(crops, config.ids_per_batch, config.batch_size // config.ids_per_batch,
                                       steps, rng), step, config.optim, steps, f"distill reid {config.student}")
    end = teacher_agreement(model, teacher, crops.images[probe], teacher_crops.images[probe], spec, teacher_spec)
    model.cpu()
    agreement = {"crops": len(probe), "mean_cosine_before": start, "mean_cosine_after": end}
    card = model.card(config.student).replace(provenance=Provenance(
        config_fingerprint=config_fingerprint(config_dict),
        source=f"distilled from {config.teacher} (sha256 {file_sha256(config.teacher)[:16]}), "
               f"{config.modality} crops"))
    checkpoint = finish_run(model, card, config.out, config_dict, history, f"ReID student distilled: {config.student}",
                            config.export)
    if distributed.is_main():
        from edgereid.fileio import atomic_write_text

        atomic_write_text(Path(config.out) / "teacher_agreement.json", json.dumps(agreement, indent=1))
        print(f"mean cosine to the teacher on {len(probe)} training crops: {start:.3f} before, {end:.3f} after")
    return checkpoint
