"""The learnt StableKeypoints teacher at inference: K keypoints per crop with test-time augmentation,
and ``edgereid keypoints label`` (pseudo-labels for a folder of crops)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from edgereid.card import file_sha256
from edgereid.diffusion.ldm import diffusion_spec, load_ldm
from edgereid.errors import CheckpointError, InputError
from edgereid.methods.stable_keypoints import geometry
from edgereid.methods.stable_keypoints.learning import TEACHER_KIND, TokenMaps, resolve_device
from edgereid.progress import progress as show_progress


@dataclass
class KeypointPrediction:
    """Points ``[N, K, 2]`` (x, y) in pixels of the image they were predicted on, and peak ``confidence
    [N, K]`` (the TTA-averaged share of attention the token holds there, 0..1)."""

    points: np.ndarray
    confidence: np.ndarray
    in_padding: float = 0.0  # share of points whose peak fell in letterbox padding (their confidence is set to 0)


class KeypointTeacher:
    """Learnt token embeddings + indices over their frozen diffusion model."""

    def __init__(self, path: str | Path, ldm: str | Path | None = None, expected_k: int | None = None,
                 tta_views: int | None = None, seed: int = 0, device: str = "auto",
                 mixed_precision: bool = False) -> None:
        from safetensors import safe_open

        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"teacher file not found: {path}", fix="run `edgereid keypoints learn` first")
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
            if meta.get("edgereid.kind") != TEACHER_KIND:
                raise CheckpointError(f"{path} is not a StableKeypoints teacher",
                                      fix="pass the teacher.safetensors written by `edgereid keypoints learn`")
            embedding, self.indices = handle.get_tensor("embedding"), handle.get_tensor("indices")
        if expected_k is not None and expected_k != len(self.indices):
            raise InputError(f"K={expected_k} does not match the teacher's saved token indices",
                             expected=f"K={len(self.indices)}", fix="use the K the teacher was learnt with, "
                             "or learn a teacher with `top_k` set to the K you need")
        self.path = path
        self.sha256 = file_sha256(path)
        self.ldm = load_ldm(ldm or meta["ldm"])
        self.image_hw = tuple(self.ldm.image_hw)
        if list(self.image_hw) != json.loads(meta["image_hw"]):
            raise CheckpointError(f"{path} was learnt on a diffusion model of another input size",
                                  expected=f"image size {json.loads(meta['image_hw'])}", got=f"{list(self.image_hw)}",
                                  fix="pass the diffusion model the tokens were learnt with (--ldm)")
        self.spec = diffusion_spec(self.image_hw, self.ldm.resize)
        self.augment = json.loads(meta["augment"])
        self.tta_views = int(meta["tta_views"]) if tta_views is None else tta_views
        where = resolve_device(device)
        self.token_maps = TokenMaps(self.ldm, embedding[None].to(where), tuple(json.loads(meta["layers"])),
                                    tuple(json.loads(meta["map_hw"])), int(meta["timestep"]), seed, where,
                                    mixed_precision)
        self.generator = torch.Generator(device=where).manual_seed(seed)

    @property
    def k(self) -> int:
        return len(self.indices)

    @torch.no_grad()
    def heatmaps(self, pixels: torch.Tensor) -> torch.Tensor:
        """TTA-averaged maps of the K tokens at the image size ``[B, K, H, W]`` (see :func:`tta_heatmaps`)."""
        return tta_heatmaps(lambda views: self.token_maps(views)[:, self.indices], pixels.to(self.token_maps.device),
                            self.tta_views, self.augment, self.generator)

    def predict(self, pixels: torch.Tensor, batch_size: int = 16) -> KeypointPrediction:
        """Keypoints of images already in the teacher's layout (``[B, 3, H, W]`` in [-1, 1], RGB), in
        input pixels (pixel ``i`` has its centre at ``i``)."""
        points, confidence = [], []
        for start in range(0, len(pixels), batch_size):
            maps = self.heatmaps(pixels[start:start + batch_size])
            points.append(geometry.argmax_xy(maps).float().cpu().numpy())
            confidence.append(maps.flatten(-2).amax(-1).clamp(0, 1).cpu().numpy())
        return KeypointPrediction(np.concatenate(points), np.concatenate(confidence))

    def predict_images(self, images: list[np.ndarray], progress: bool = True) -> KeypointPrediction:
        """Keypoints of BGR crop images, in each image's own pixel coordinates. Crops smaller than the
        teacher's input on both sides are refused: upsampled pixels carry no parts to find."""
        for image in images:
            if image.shape[0] < self.image_hw[0] and image.shape[1] < self.image_hw[1]:
                raise InputError(f"a {image.shape[1]}x{image.shape[0]} px crop is smaller than the teacher's "
                                 f"{self.image_hw[1]}x{self.image_hw[0]} input",
                                 expected="crops at least as tall or as wide as the teacher's input",
                                 fix="drop small detections before labelling (see --limit and your detector's "
                                     "minimum box size)")
        from edgereid.data.person_crops import model_inputs

        batch, plan = model_inputs(images, self.spec)
        pixels = torch.from_numpy(batch)
        chunks = range(0, len(pixels), 64)
        if progress:
            chunks = show_progress(chunks, desc=f"keypoints teacher ({self.tta_views} TTA views)", unit="64 crops")
        parts = [self.predict(pixels[i:i + 64]) for i in chunks]
        from edgereid.ops.geometry import points_to_frame

        input_points = np.concatenate([p.points for p in parts])
        confidence = np.concatenate([p.confidence for p in parts])
        in_padding = geometry.padding_mask(input_points, plan.placement)
        # a peak in a letterbox bar is outside the crop: kept on the crop's border, with confidence 0 (not seen)
        points = points_to_frame(input_points, plan.to_frame)
        sizes = np.array([[image.shape[1], image.shape[0]] for image in images], np.float32)[:, None]
        points = np.clip(points, -0.5, sizes - 0.5)
        confidence[in_padding] = 0.0
        return KeypointPrediction(points, confidence, float(in_padding.mean()))


def tta_heatmaps(maps_of: Callable[[torch.Tensor], torch.Tensor], pixels: torch.Tensor, views: int,
                 augment: dict, generator: torch.Generator) -> torch.Tensor:
    """Test-time augmentation as the official code does it: ``maps_of`` (images ``[B, 3, H, W]`` to ``[B, K, h,
    w]`` maps) on the identity view and ``views - 1`` random affine views, each map upsampled to the image size and
    warped back, averaged over the views that cover each pixel. Returns ``[B, K, H, W]`` on the pixels' device."""
    image_hw = tuple(pixels.shape[-2:])
    total = coverage = None
    for view in range(max(1, views)):
        if view == 0:
            theta = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]], device=pixels.device).expand(len(pixels), 2, 3)
        else:
            theta = geometry.random_affine(len(pixels), image_hw, generator, augment["degrees"],
                                           tuple(augment["scale"]), augment["translate"]).to(pixels.device)
        maps = torch.nn.functional.interpolate(maps_of(geometry.warp(pixels, theta)), size=image_hw, mode="bilinear",
                                               align_corners=False)
        inverse = geometry.invert_affine(theta)
        back = geometry.warp(maps, inverse)
        seen = geometry.warp(torch.ones_like(maps[:, :1]), inverse)
        total, coverage = (back, seen) if total is None else (total + back, coverage + seen)
    return total / coverage.clamp_min(1e-6)
