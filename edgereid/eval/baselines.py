"""Trivial baselines, so the models' numbers mean something.

- ReID: a colour-histogram embedding (HSV histograms of three horizontal stripes, Hellinger-mapped).
- Keypoints: the mean pose of a training set, placed in each box.
- Faces: raw-pixel cosine between aligned grey crops.
"""

from __future__ import annotations

import cv2
import numpy as np

from edgereid.ops.postprocess import l2_normalize

HIST_BINS = (8, 4, 4)  # hue, saturation, value


def colour_histogram_embedding(crops: list[np.ndarray], stripes: int = 3) -> np.ndarray:
    """One unit vector per BGR crop: per-stripe HSV histograms, square-rooted (Hellinger)."""
    vectors = []
    for crop in crops:
        hsv = cv2.cvtColor(crop, cv2.COLOR_BGR2HSV)
        bounds = np.linspace(0, len(hsv), stripes + 1).astype(int)
        parts = [cv2.calcHist([hsv[a:b]], [0, 1, 2], None, list(HIST_BINS), [0, 180, 0, 256, 0, 256]).ravel()
                 for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
        hist = np.concatenate(parts)
        vectors.append(np.sqrt(hist / max(hist.sum(), 1.0)))
    return l2_normalize(np.array(vectors))


def mean_pose(keypoints: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Average joint positions ``[K, 2]`` in box-relative coordinates (0..1), over visible joints."""
    size = (boxes[:, 2:] - boxes[:, :2])[:, None, :]
    relative = (keypoints[..., :2] - boxes[:, None, :2]) / size
    visible = keypoints[..., 2:3] > 0
    return (relative * visible).sum(0) / np.maximum(visible.sum(0), 1)


def place_mean_pose(pose: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """The mean pose stretched into each box: ``[N, K, 2]`` frame pixels."""
    size = (boxes[:, 2:] - boxes[:, :2])[:, None, :]
    return (boxes[:, None, :2] + pose[None] * size).astype(np.float32)


def raw_pixel_embedding(batch: np.ndarray) -> np.ndarray:
    """Grey, mean-removed, unit-length pixels of preprocessed crops ``[N, 3, H, W]``."""
    grey = batch.mean(1).reshape(len(batch), -1)
    return l2_normalize(grey - grey.mean(1, keepdims=True))
