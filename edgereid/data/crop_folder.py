"""A folder of crop images as model inputs: calibration and accuracy-gate data for reduced precision.

Each image is one crop (what a detector box would cut out); it is resized to the card's input with the
runtime's own preprocessing (stretch or letterbox, colour order, mean/std), so calibration sees
exactly what the engine will.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgereid.card import InputSpec
from edgereid.errors import InputError
from edgereid.fileio import IMAGE_SUFFIXES


def list_images(folder: str | Path) -> list[Path]:
    """The images of ``folder`` (recursively), sorted; an error if there is none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"crop folder not found: {folder}", fix="pass a folder of crop images (png/jpg)")
    images = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise InputError(f"{folder} holds no images", expected=f"files ending in {', '.join(IMAGE_SUFFIXES)}",
                         fix="fill it with crops like the ones the cameras produce, e.g. `edgereid synth "
                             "--layout market1501` (person crops) or `--layout faces`")
    return images


def read_images(folder: str | Path, limit: int | None = None) -> tuple[list[Path], list[np.ndarray]]:
    """Up to ``limit`` images of ``folder`` (spread over the sorted list) as BGR arrays, with their paths."""
    import cv2

    paths = list_images(folder)
    if limit is not None and len(paths) > limit:
        paths = [paths[i] for i in np.linspace(0, len(paths) - 1, limit).round().astype(int)]
    images = []
    for path in paths:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise InputError(f"cannot read image {path}", fix="remove or replace the file")
        images.append(image)
    return paths, images


def load_crops(folder: str | Path, spec: InputSpec, limit: int | None = None) -> np.ndarray:
    """Up to ``limit`` images of ``folder`` (spread over the sorted list) as a normalised batch ``[N, 3, H, W]``."""
    from edgereid.ops.geometry import plan_whole_images
    from edgereid.ops.preprocess import preprocess_batch

    _, frames = read_images(folder, limit)
    return preprocess_batch(frames, plan_whole_images(frames, spec), spec)
