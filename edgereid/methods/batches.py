"""Batch sampling, the simple augmentations shared by the training methods, and a loader thread that prepares
batches ahead of the training step."""

from __future__ import annotations

import queue
import threading
from typing import Iterable, Iterator, TypeVar

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


def pad_and_crop(images: np.ndarray, pad: int, rng: np.random.Generator) -> np.ndarray:
    """Pad every uint8 crop ``[N, H, W, 3]`` by ``pad`` black pixels on each side and cut a random ``H x W`` window
    back out (torchvision's ``Pad`` + ``RandomCrop``, the ReID augmentation of the official DCAC/CLIP-ReID code)."""
    if pad <= 0:
        return images
    padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    height, width = images.shape[1:3]
    rows, cols = rng.integers(0, 2 * pad + 1, len(images)), rng.integers(0, 2 * pad + 1, len(images))
    return np.stack([padded[i, r:r + height, c:c + width] for i, (r, c) in enumerate(zip(rows, cols))])


def random_erasing(batch: np.ndarray, probability: float, rng: np.random.Generator,
                   area: tuple[float, float] = (0.02, 1 / 3), aspect: tuple[float, float] = (0.3, 1 / 0.3)) -> None:
    """Erase one random rectangle of each normalised crop ``[N, C, H, W]`` with ``probability``, in place, filling
    it with standard-normal noise (timm's ``RandomErasing(mode="pixel")``, which the official code uses): area a
    uniform share of the crop in ``area``, aspect ratio log-uniform in ``aspect``; ten tries to fit, as timm."""
    height, width = batch.shape[2:]
    for chosen in np.flatnonzero(rng.random(len(batch)) < probability):
        image = batch[chosen]  # a view: the rectangle is written into the batch
        for _ in range(10):
            target = rng.uniform(*area) * height * width
            ratio = np.exp(rng.uniform(np.log(aspect[0]), np.log(aspect[1])))
            h, w = int(round(np.sqrt(target * ratio))), int(round(np.sqrt(target / ratio)))
            if 0 < h < height and 0 < w < width:
                top, left = rng.integers(0, height - h + 1), rng.integers(0, width - w + 1)
                image[:, top:top + h, left:left + w] = rng.standard_normal((image.shape[0], h, w))
                break


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


Item = TypeVar("Item")
_DONE = object()


def ahead(items: Iterable[Item], depth: int) -> Iterator[Item]:
    """``items`` in their order, produced ahead on one loader thread (``depth`` 0: inline): up to ``depth`` wait
    in the queue while one more is being prepared.

    This is the job of a PyTorch DataLoader worker with pinned memory: while the model runs on one batch, the next
    ones are indexed, augmented, normalised and pinned (NumPy and the copy release the GIL). One thread keeps the
    order in which the batches draw their random numbers, so a run is the same with and without prefetching. An
    error in the loader is raised here, at the batch it failed on; closing the iterator early stops the loader."""
    if depth <= 0:
        yield from items
        return
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def load() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
            put((_DONE, None))
        except BaseException as error:  # handed to the consumer, which raises it
            put((_DONE, error))

    loader = threading.Thread(target=load, name="batch-loader", daemon=True)
    loader.start()
    try:
        while True:
            item, error = ready.get()
            if error is not None:
                raise error
            if item is _DONE:
                return
            yield item
    finally:
        stop.set()
        loader.join()
