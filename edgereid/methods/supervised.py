"""Supervised baselines that make the bundled default students (``edgereid train``, ``method: supervised``).

- ReID: label-smoothed identity cross-entropy on the BNNeck logits + batch-hard triplet on the
  pre-BNNeck feature, with P identities x K crops per batch.
- Keypoints: heatmap MSE to Gaussians + L1 on the in-graph soft-argmax coordinates, ground truth
  from the world, with horizontal flips that swap left and right joints.
- Faces: ArcFace (additive angular margin) on aligned low-resolution face crops.

All crops come from :mod:`edgereid.data.scene_crops`, i.e. through the runtime's preprocessing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np
import torch

from edgereid.card import InputSpec
from edgereid.data.synthetic import WorldSpec
from edgereid.data.scene_crops import concat_crops, rendered_face_crops, scene_crops
from edgereid.methods import distributed
from edgereid.methods.batches import flip_half, label_map, photometric_jitter, pk_batches, shuffled_batches
from edgereid.methods.losses import ArcMarginHead, batch_hard_triplet, keypoint_loss, label_smoothed_ce
from edgereid.methods.run_config import TrainRun
from edgereid.methods.trainer import finish_run, fit
from edgereid.models import create_model, get_entry
from edgereid.ops.geometry import mirror_placement
from edgereid.ops.preprocess import normalise_batch

# COCO-17 index of each joint's mirror image (left <-> right).
COCO17_FLIP = (0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15)


@dataclass(frozen=True, kw_only=True)
class TrainConfig(TrainRun):
    """One training run. ``ids_per_batch`` (P) applies to ReID; the ArcFace terms and
    ``rendered_faces_per_identity`` (degraded high-resolution renders added to the scene faces) to faces."""

    METHODS: ClassVar[tuple[str, ...]] = ("supervised",)

    data: WorldSpec = field(default_factory=WorldSpec)
    batch_size: int = 64
    ids_per_batch: int = 16
    triplet_margin: float = 0.3
    arcface_scale: float = 32.0
    arcface_margin: float = 0.3
    rendered_faces_per_identity: int = 0


def _random_erase(images: np.ndarray, rng: np.random.Generator, probability: float = 0.5) -> np.ndarray:
    """Blank a random rectangle in some crops (occlusion robustness, as in the strong ReID baseline)."""
    out = images.copy()
    height, width = images.shape[1:3]
    for image in out:
        if rng.random() < probability:
            h = int(rng.uniform(0.1, 0.4) * height)
            w = int(rng.uniform(0.2, 0.6) * width)
            y, x = rng.integers(0, height - h), rng.integers(0, width - w)
            image[y:y + h, x:x + w] = rng.integers(0, 256, 3, dtype=np.uint8)
    return out


def train(config: TrainConfig, config_dict: dict[str, Any]) -> Path:
    """Train the configured student, save the run to ``config.out``, export ONNX; return the checkpoint."""
    task = get_entry(config.model).task
    trainers: dict[str, Callable[[TrainConfig], tuple[torch.nn.Module, list[dict[str, float]]]]] = {
        "reid": _train_reid, "keypoints": _train_keypoints, "face": _train_face}
    torch.manual_seed(config.optim.seed)
    model, history = trainers[task](config)
    model.cpu()  # the face trainer runs on the GPU when there is one
    return finish_run(model, model.card(config.model), config.out, config_dict, history,
                      f"{config.model} ({task}, supervised)", config.export)


def _train_reid(config: TrainConfig) -> tuple[torch.nn.Module, list[dict[str, float]]]:
    probe = create_model(config.model, **config.model_args)
    spec = probe.card(config.model).input
    crops, _ = scene_crops(config.data, person_spec=spec)
    labels, num_classes = label_map(crops.pids)
    model = create_model(config.model, **{**config.model_args, "num_classes": num_classes})
    rng = np.random.default_rng(config.optim.seed)
    per_id = config.batch_size // config.ids_per_batch
    steps = len(crops) // config.batch_size

    def step(index: np.ndarray) -> dict[str, torch.Tensor]:
        images = crops.images[index]
        flip_half(images, rng)
        images = _random_erase(photometric_jitter(images, rng), rng)
        feat, logits = model.forward_train(torch.from_numpy(normalise_batch(images, spec)))
        target = torch.from_numpy(labels[index])
        return {"id": label_smoothed_ce(logits, target),
                "triplet": batch_hard_triplet(feat, target, config.triplet_margin)}

    history = fit(model, model.parameters(), lambda _: pk_batches(crops, config.ids_per_batch, per_id, steps, rng),
                  step, config.optim, steps, f"reid {config.model}")
    return model, history


def _model_and_input(config: TrainConfig) -> tuple[torch.nn.Module, InputSpec]:
    """The configured model, built, and the input its card declares."""
    model = create_model(config.model, **config.model_args)
    return model, model.card(config.model).input


def _train_keypoints(config: TrainConfig) -> tuple[torch.nn.Module, list[dict[str, float]]]:
    model, spec = _model_and_input(config)
    crops, _ = scene_crops(config.data, person_spec=spec)
    rng = np.random.default_rng(config.optim.seed)
    flip_index = np.array(COCO17_FLIP)

    def step(index: np.ndarray) -> dict[str, torch.Tensor]:
        images = crops.images[index]
        points = crops.keypoints[index]
        flip = flip_half(images, rng)
        points[flip, :, 0] = spec.width - 1 - points[flip, :, 0]
        points[flip] = points[flip][:, flip_index]
        placement = mirror_placement(crops.placement[index], spec.width, flip)
        heatmaps, coords, _ = model(torch.from_numpy(normalise_batch(photometric_jitter(images, rng), spec,
                                                                     placement=placement)))
        return keypoint_loss(heatmaps, coords, torch.from_numpy(points[..., :2]), torch.from_numpy(points[..., 2] > 0),
                             model.stride, model.input_hw)

    steps = len(crops) // config.batch_size
    history = fit(model, model.parameters(), lambda _: shuffled_batches(len(crops), config.batch_size, rng),
                  step, config.optim, steps, f"keypoints {config.model}")
    return model, history


def _train_face(config: TrainConfig) -> tuple[torch.nn.Module, list[dict[str, float]]]:
    model, spec = _model_and_input(config)
    _, crops = scene_crops(config.data, face_spec=spec)
    if config.rendered_faces_per_identity:
        crops = concat_crops([crops, rendered_face_crops(config.data, spec, config.rendered_faces_per_identity)])
    labels, num_classes = label_map(crops.pids)
    head = ArcMarginHead(model.embedding_dim, num_classes, config.arcface_scale, config.arcface_margin)
    rng = np.random.default_rng(config.optim.seed)
    device = distributed.device()
    model.to(device)
    head.to(device)

    def step(index: np.ndarray) -> dict[str, torch.Tensor]:
        images = crops.images[index]
        flip_half(images, rng)
        pixels = torch.from_numpy(normalise_batch(photometric_jitter(images, rng), spec)).to(device)
        return {"arcface": head(model.features(pixels), torch.from_numpy(labels[index]).to(device))}

    steps = len(crops) // config.batch_size
    params = list(model.parameters()) + list(head.parameters())
    history = fit(model, params, lambda _: shuffled_batches(len(crops), config.batch_size, rng),
                  step, config.optim, steps, f"face {config.model}")
    return model, history

