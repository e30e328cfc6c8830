"""Model outputs to public results: unit embeddings, keypoints in frame pixels, named joints."""

from __future__ import annotations

import numpy as np

from edgereid.card import KeypointReadout


def l2_normalize(vectors: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Rows scaled to unit length (in float32), zero rows left at zero."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, eps)


def points_to_frame(points: np.ndarray, to_frame: np.ndarray) -> np.ndarray:
    """Map ``[N, K, 2]`` model-input pixel coordinates through per-crop affine maps ``[N, 2, 3]``."""
    linear = to_frame[:, :, :2]
    offset = to_frame[:, :, 2]
    return (np.einsum("nij,nkj->nki", linear, points) + offset[:, None, :]).astype(np.float32)


def points_to_input(points: np.ndarray, to_frame: np.ndarray) -> np.ndarray:
    """The inverse of :func:`points_to_frame`: frame (or crop-image) points ``[N, K, 2]`` into each crop's
    model-input pixels."""
    full = np.concatenate([to_frame, np.tile([[[0.0, 0.0, 1.0]]], (len(to_frame), 1, 1))], axis=1)
    return points_to_frame(np.asarray(points, np.float64), np.linalg.inv(full)[:, :2])


def apply_readout(points: np.ndarray, readout: KeypointReadout, input_hw: tuple[int, int]) -> np.ndarray:
    """Named joints from K unsupervised points through the card's linear read-out.

    Points are centred and scaled to the crop (``p / size - 0.5``), flattened as (x0, y0, x1, ...),
    multiplied by the ``[2M, 2K]`` matrix, and mapped back to input-crop pixels.
    """
    height, width = input_hw
    size = np.array([width, height], dtype=np.float64)
    centred = (points / size - 0.5).reshape(len(points), -1)
    joints = centred @ np.asarray(readout.matrix, dtype=np.float64).T
    return ((joints.reshape(len(points), -1, 2) + 0.5) * size).astype(np.float32)
