"""Galleries from pictures: embed crop images with a deployed model and enrol them by identity.

A crop folder holds one sub-folder per identity (the folder's name is the identity) with that person's (or
face's) crop images: what ``edgereid gallery enroll`` reads. Each image is a whole crop, preprocessed exactly
as the pipeline preprocesses a detector box (the card's resize policy, colour order, mean and std).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgereid.errors import InputError
from edgereid.fileio import IMAGE_SUFFIXES
from edgereid.gallery import Gallery
from edgereid.ops.geometry import plan_whole_images
from edgereid.runtime.model import CropModel


def embed_images(model: CropModel, images: list[np.ndarray]) -> np.ndarray:
    """Unit embeddings ``[N, D]`` of whole crop images; an error for a model that does not embed."""
    if model.card.task not in ("reid", "face"):
        raise InputError(f"'{model.card.name}' is a {model.card.task} model", expected="a reid or face model")
    found = model.run(images, plan_whole_images(images, model.card.input))
    if found.invalid.any():
        raise InputError(f"the model gave non-finite embeddings for {int(found.invalid.sum())} of the crops",
                         fix="check the crops and the model")
    return found.embeddings


def read_image(path: Path) -> np.ndarray:
    """A BGR image, or an error naming the file."""
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise InputError(f"cannot read image {path}", fix="remove or replace the file")
    return image


def identity_folders(root: str | Path) -> dict[str, list[Path]]:
    """``{identity: [image paths]}`` of a crop folder (one sub-folder per identity)."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"crop folder not found: {root}", fix="pass a folder with one sub-folder per identity")
    found = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if images:
            found[folder.name] = images
    if not found:
        raise InputError(f"{root} has no identity sub-folders with images", expected=f"{root}/NAME/*.jpg",
                         fix="put each identity's crops in a folder named after it")
    return found


def enroll_folder(gallery: Gallery, model: CropModel, root: str | Path) -> dict[str, int]:
    """Embed every identity's crops under ``root`` and enrol them; returns how many crops per identity."""
    gallery.check_compatible(model.card, "the gallery being enrolled into")
    enrolled = {}
    for identity, paths in identity_folders(root).items():
        gallery.enroll(identity, embed_images(model, [read_image(p) for p in paths]))
        enrolled[identity] = len(paths)
    return enrolled
