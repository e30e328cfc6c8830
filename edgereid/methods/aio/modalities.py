"""Missing-modality synthesis for AIO's first training stage: IR and sketch images made from RGB crops.

- Channel augmentation (as the paper's summaries describe it): one colour channel, picked at random,
  copied to all three; a cheap stand-in for the intensity an IR camera records.
- Line art: the paper uses the ``Lineart`` line-drawing network; this SDK cannot download it, so the
  line art is an extended difference of Gaussians (dark strokes on white, soft edges), a classical
  line-drawing filter. It differs on purpose from the world's own sketch renderer (multi-channel Canny),
  which the second stage uses, so the two stages see two styles as the paper's synthetic and real data do.

The second stage uses the world's own renderings (:func:`edgereid.data.cameras.to_modality`).
"""

from __future__ import annotations

import cv2
import numpy as np

from edgereid.data.cameras import to_modality
from edgereid.errors import InputError

SOURCES = ("synthetic", "world")


def _check_batch(images: np.ndarray) -> None:
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise InputError("modality synthesis needs a batch of BGR crops", expected="uint8 array [N, H, W, 3]",
                         got=f"{images.dtype} array of shape {images.shape}")


def channel_augmented_ir(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per crop, one random colour channel copied to all three."""
    _check_batch(images)
    channels = rng.integers(0, 3, len(images))
    return np.repeat(images[np.arange(len(images)), :, :, channels][..., None], 3, axis=-1)


def line_art(image: np.ndarray, sigma: float = 0.8, k: float = 1.6, eps: float = 0.01,
             sharpness: float = 60.0) -> np.ndarray:
    """Dark strokes on white, same shape as the BGR ``image`` (three equal channels)."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float32) / 255.0
    difference = cv2.GaussianBlur(grey, (0, 0), sigma) - cv2.GaussianBlur(grey, (0, 0), sigma * k)
    strokes = np.where(difference >= -eps, 1.0, 1.0 + np.tanh(sharpness * (difference + eps)))
    return cv2.merge([np.clip(strokes * 255.0, 0, 255).astype(np.uint8)] * 3)


def modality_images(images: np.ndarray, modality: str, source: str, rng: np.random.Generator) -> np.ndarray:
    """``images`` (RGB-camera crops) as ``modality`` ("rgb", "ir", "sketch"), synthesised (stage 1) or
    rendered by the world (stage 2)."""
    _check_batch(images)
    if source not in SOURCES:
        raise InputError("unknown modality source", expected=" or ".join(SOURCES), got=repr(source))
    if modality == "rgb":
        return images.copy()
    if source == "synthetic" and modality == "ir":
        return channel_augmented_ir(images, rng)
    if source == "synthetic" and modality == "sketch":
        return np.stack([line_art(image) for image in images])
    return np.stack([to_modality(image, modality, rng) for image in images])
