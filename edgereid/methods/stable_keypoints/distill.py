"""``edgereid distill`` with ``method: stable_keypoints``: the compact keypoint student trained on the
StableKeypoints teacher's pseudo-labels (``methods.md`` §3.7, edgereid's addition; the paper has no
student).

Heatmap MSE to Gaussians at the teacher's points + L1 on the student's in-graph soft-argmax
coordinates (the supervised keypoint loss; a point whose teacher confidence is below ``min_confidence`` counts as
not visible: its heatmap is trained toward zero and its coordinates are left out), and optionally
the teacher's equivariance loss on the student's heatmaps. No horizontal flips: unsupervised points
have no known left/right pairing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from edgereid.card import Provenance
from edgereid.errors import ConfigError, InputError
from edgereid.methods.run_config import DistillRun
from edgereid.methods.stable_keypoints import geometry
from edgereid.methods import distributed
from edgereid.methods.batches import photometric_jitter, shuffled_batches
from edgereid.methods.losses import keypoint_loss
from edgereid.methods.trainer import config_fingerprint, finish_run, fit
from edgereid.models import create_model
from edgereid.ops.preprocess import normalise_batch


@dataclass(frozen=True, kw_only=True)
class KeypointDistillConfig(DistillRun):
    """``crops``: the folder the teacher labelled; ``labels``: its ``edgereid keypoints label`` file."""

    METHODS: ClassVar[tuple[str, ...]] = ("stable_keypoints",)

    crops: str
    labels: str
    batch_size: int = 32
    min_confidence: float = 0.0
    equivariance_weight: float = 0.0


def _student_equivariance(model, pixels: torch.Tensor, heatmaps: torch.Tensor,
                          generator: torch.Generator) -> torch.Tensor:
    theta = geometry.random_affine(len(pixels), tuple(pixels.shape[-2:]), generator)
    return geometry.equivariance_loss(heatmaps, model.forward_heatmaps(geometry.warp(pixels, theta)), theta)


def distill(config: KeypointDistillConfig, config_dict: dict[str, Any]) -> Path:
    """Train the student on the pseudo-labels, save the run, export ONNX; returns the checkpoint."""
    import cv2

    from edgereid.data.scene_crops import runtime_crops_uint8
    from edgereid.data.person_crops import load_pseudo_labels
    from edgereid.ops.geometry import points_to_input
    from edgereid.ops.geometry import plan_whole_images

    labels = load_pseudo_labels(config.labels)
    k = labels["points"].shape[1]
    if config.student_args.get("num_joints", k) != k:
        raise ConfigError(f"student_args.num_joints={config.student_args['num_joints']} but the labels hold K={k} points",
                          fix="drop num_joints from model_args (it follows the labels) or relabel")
    model = create_model(config.student, **{**config.student_args, "num_joints": k})
    spec = model.card(config.student).input
    images = []
    for name in labels["files"]:
        image = cv2.imread(str(Path(config.crops) / str(name)), cv2.IMREAD_COLOR)
        if image is None:
            raise InputError(f"labelled crop {name} not found in {config.crops}",
                             fix="point `crops` at the folder that was labelled")
        images.append(image)
    plan = plan_whole_images(images, spec)
    crops = runtime_crops_uint8(spec, images, plan)
    targets = points_to_input(labels["points"], plan.to_frame)
    visible = labels["confidence"] >= config.min_confidence
    rng = np.random.default_rng(config.optim.seed)
    sample_rng, generator = distributed.sample_randomness(rng, config.optim.seed)

    def step(index: np.ndarray) -> dict[str, torch.Tensor]:
        pixels = torch.from_numpy(normalise_batch(photometric_jitter(crops[index], sample_rng), spec,
                                                  placement=plan.placement[index]))
        heatmaps, coords, _ = model(pixels)
        terms = keypoint_loss(heatmaps, coords, torch.from_numpy(targets[index]), torch.from_numpy(visible[index]),
                              model.stride, model.input_hw)
        if config.equivariance_weight:
            terms["equivariance"] = config.equivariance_weight * _student_equivariance(model, pixels, heatmaps,
                                                                                        generator)
        return terms

    steps = len(crops) // config.batch_size
    history = fit(model, model.parameters(), lambda _: shuffled_batches(len(crops), config.batch_size, rng),
                  step, config.optim, steps, f"distill keypoints {config.student}")
    card = model.card(config.student).replace(provenance=Provenance(
        config_fingerprint=config_fingerprint(config_dict),
        source=f"distilled from StableKeypoints teacher labels {config.labels} "
               f"(teacher sha256 {str(labels['teacher_sha256'])[:16]})"))
    return finish_run(model, card, config.out, config_dict, history, f"StableKeypoints student {config.student}",
                      config.export)
