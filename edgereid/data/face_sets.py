"""High- and low-resolution face sets from the synthetic world, for the face methods and their benchmark.

Faces are rendered at high resolution (``WorldConfig.face_size``, 112 px) with their five landmarks,
and turned into model inputs exactly as the runtime does it: the similarity warp of
:func:`edgereid.ops.geometry.plan_crops` onto the card's template. Low-resolution copies go
through the world's surveillance degradation (blur, area down-sampling to ``size`` px, noise, JPEG)
and are aligned from that small image, so a model sees what a camera would give it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgereid.card import InputSpec
from edgereid.data.face_photos import degrade
from edgereid.data.face_training import FaceData, aligned_landmarks, identity_folder_faces, recordio_faces
from edgereid.data.scene_crops import runtime_crops_uint8
from edgereid.data.synthetic import World, WorldConfig, to_pixel_centres
from edgereid.errors import ConfigError, InputError
from edgereid.ops.geometry import plan_whole_images
from edgereid.progress import progress as show_progress


def check_lr_sizes(sizes: tuple[int, ...], allow_empty: bool = False) -> None:
    """A low-resolution range is ``(smallest, largest)`` face side in pixels, 1 <= smallest <= largest."""
    if allow_empty and not sizes:
        return
    if len(sizes) != 2 or not 1 <= sizes[0] <= sizes[1]:
        raise ConfigError("lr_sizes must be a face-size range in pixels", expected="[smallest, largest], e.g. [8, 32]",
                          got=repr(list(sizes)))


@dataclass
class FaceRenders:
    """High-resolution face pictures: ``images`` uint8 BGR ``[N, S, S, 3]``, ``landmarks`` ``[N, 5, 2]``
    in the world's pixel-edge convention, ``pids``."""

    images: np.ndarray
    landmarks: np.ndarray
    pids: np.ndarray

    def __len__(self) -> int:
        return len(self.pids)


def training_faces(data: FaceData, progress: bool = True) -> FaceRenders:
    """The faces ``data`` names: the world's renders, or a real set's aligned faces (decoded lazily, their landmarks
    the template they were aligned to; :mod:`edgereid.data.face_training`)."""
    if data.source == "world":
        return render_faces(data.seed, data.identities, data.per_identity, progress)
    reader = identity_folder_faces if data.source == "folder" else recordio_faces
    images, pids = reader(data.path, data.workers)
    return FaceRenders(images, aligned_landmarks(len(pids), images.size), pids)


def render_faces(seed: int, identities: int, per_identity: int, progress: bool = True) -> FaceRenders:
    """``per_identity`` independent high-resolution pictures of each identity of world ``seed``."""
    world = World(WorldConfig(seed=seed, num_identities=identities))
    rng = np.random.default_rng((seed, 11))
    pids = [i.pid for i in world.identities for _ in range(per_identity)]
    if progress:
        pids = show_progress(pids, desc=f"rendering faces (world {seed})", unit="face")
    samples = [world.render_face(pid, rng) for pid in pids]
    return FaceRenders(np.stack([s.image for s in samples]), np.stack([s.landmarks for s in samples]),
                       np.array([s.pid for s in samples]))


def align_faces(images: list[np.ndarray] | np.ndarray, landmarks: np.ndarray, spec: InputSpec) -> np.ndarray:
    """Each picture warped onto the card's face template by its landmarks (pixel-edge convention),
    as uint8 model inputs ``[N, H, W, 3]``."""
    landmarks = to_pixel_centres(np.asarray(landmarks, np.float64))
    plan = plan_whole_images(list(images), spec, landmarks)
    return runtime_crops_uint8(spec, list(images), plan)


def degrade_faces(renders: FaceRenders, index: np.ndarray, sizes: tuple[int, int] | int,
                  rng: np.random.Generator) -> tuple[list[np.ndarray], np.ndarray]:
    """Low-resolution copies of ``renders[index]`` at a random size in ``sizes`` (inclusive) or a fixed
    size, with their landmarks scaled into the small pictures (pixel-edge convention)."""
    low, high = (sizes, sizes) if isinstance(sizes, int) else sizes
    full = renders.images.shape[1]
    if not 1 <= low <= high <= full:
        raise InputError("face degradation sizes out of range", expected=f"1 <= low <= high <= {full}",
                         got=f"{low}..{high}")
    small, landmarks = [], []
    for i in index:
        size = int(rng.integers(low, high + 1))
        small.append(degrade(renders.images[i], size, rng))
        landmarks.append(renders.landmarks[i] * (size / full))  # pixel edges scale exactly
    return small, np.stack(landmarks)
