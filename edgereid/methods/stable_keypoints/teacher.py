"""The learnt StableKeypoints teacher at inference: K keypoints per crop with test-time augmentation,
and ``edgereid keypoints label`` (pseudo-labels for a folder of crops)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from edgereid.card import file_sha256
from edgereid.diffusion.ldm import diffusion_spec, load_ldm
from edgereid.errors import CheckpointError, InputError
from edgereid.methods.stable_keypoints import geometry
from edgereid.methods.stable_keypoints.learning import TEACHER_KIND, TokenMaps
from edgereid.progress import progress as show_progress


@dataclass
class KeypointPrediction:
    """Points ``[N, K, 2]`` (x, y) in pixels of the image they were predicted on, and peak ``confidence
    [N, K]`` (the TTA-averaged share of attention the token holds there, 0..1)."""

    points: np.ndarray
    confidence: np.ndarray


class KeypointTeacher:
    """Learnt token embeddings + indices over their frozen diffusion model."""

    def __init__(self, path: str | Path, ldm: str | Path | None = None, expected_k: int | None = None,
                 tta_views: int | None = None, seed: int = 0) -> None:
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
        self.token_maps = TokenMaps(self.ldm, embedding[None], tuple(json.loads(meta["layers"])),
                                    tuple(json.loads(meta["map_hw"])), int(meta["timestep"]), seed)
        self.generator = torch.Generator().manual_seed(seed)

    @property
    def k(self) -> int:
        return len(self.indices)

    @torch.no_grad()
    def heatmaps(self, pixels: torch.Tensor) -> torch.Tensor:
        """TTA-averaged maps of the K tokens at the image size ``[B, K, H, W]``: the identity view plus
        ``tta_views - 1`` random affine views, each warped back, averaged over the views that cover a pixel."""
        total = torch.zeros(len(pixels), self.k, *self.image_hw)
        coverage = torch.zeros(len(pixels), 1, *self.image_hw)
        for view in range(max(1, self.tta_views)):
            if view == 0:
                theta = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]).expand(len(pixels), 2, 3)
            else:
                theta = geometry.random_affine(len(pixels), self.image_hw, self.generator, self.augment["degrees"],
                                               tuple(self.augment["scale"]), self.augment["translate"])
            maps = self.token_maps(geometry.warp(pixels, theta))[:, self.indices]
            maps = torch.nn.functional.interpolate(maps, size=self.image_hw, mode="bilinear", align_corners=False)
            inverse = geometry.invert_affine(theta)
            total += geometry.warp(maps, inverse)
            coverage += geometry.warp(torch.ones(len(pixels), 1, *self.image_hw), inverse)
        return total / coverage.clamp_min(1e-6)

    def predict(self, pixels: torch.Tensor, batch_size: int = 16) -> KeypointPrediction:
        """Keypoints of images already in the teacher's layout (``[B, 3, H, W]`` in [-1, 1], RGB), in
        input pixels (pixel ``i`` has its centre at ``i``)."""
        points, confidence = [], []
        for start in range(0, len(pixels), batch_size):
            maps = self.heatmaps(pixels[start:start + batch_size])
            xy = geometry.argmax_xy(maps)
            points.append(xy.float().numpy())
            confidence.append(maps.flatten(-2).amax(-1).clamp(0, 1).numpy())
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

        points = points_to_frame(np.concatenate([p.points for p in parts]), plan.to_frame)
        # a peak in a letterbox bar is outside the crop: keep it on the crop's border
        sizes = np.array([[image.shape[1], image.shape[0]] for image in images], np.float32)[:, None]
        points = np.clip(points, -0.5, sizes - 0.5)
        return KeypointPrediction(points, np.concatenate([p.confidence for p in parts]))
