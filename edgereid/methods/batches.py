"""Batch sampling and the simple augmentations shared by the training methods."""

from __future__ import annotations

from typing import Iterator

import numpy as np

from edgereid.data.scene_crops import CropSet


def flip_half(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Mirror a random half of the crops in place; returns which ones were mirrored."""
    flip = rng.random(len(images)) < 0.5
    images[flip] = images[flip][:, :, ::-1]
    return flip


def photometric_jitter(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per-crop brightness and contrast jitter of uint8 crops."""
    gain = rng.uniform(0.75, 1.25, (len(images), 1, 1, 1))
    bias = rng.uniform(-20, 20, (len(images), 1, 1, 1))
    return np.clip(images * gain + bias, 0, 255).astype(np.uint8)


def pk_batches(crops: CropSet, ids_per_batch: int, per_id: int, steps: int,
               rng: np.random.Generator) -> Iterator[np.ndarray]:
    """``steps`` index batches of P distinct identities x K crops each (with replacement when an
    identity has fewer than K crops)."""
    by_id = [np.flatnonzero(crops.pids == pid) for pid in np.unique(crops.pids)]
    for _ in range(steps):
        chosen = rng.choice(len(by_id), ids_per_batch, replace=False)
        yield np.concatenate([rng.choice(by_id[i], per_id, replace=len(by_id[i]) < per_id) for i in chosen])


def shuffled_batches(count: int, batch_size: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """One epoch of index batches in random order (the last partial batch dropped)."""
    order = rng.permutation(count)
    for start in range(0, count - batch_size + 1, batch_size):
        yield order[start:start + batch_size]


def label_map(pids: np.ndarray) -> tuple[np.ndarray, int]:
    """Identity ids to class indices 0..C-1, and C."""
    unique = np.unique(pids)
    return np.searchsorted(unique, pids), len(unique)
