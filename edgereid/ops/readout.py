"""The standard linear read-out of unsupervised keypoints (``methods.md`` §3.3); storing
it in a student's card is :mod:`edgereid.exporting.readout` (``edgereid keypoints readout``).

A linear map without bias from the K points (x, y flattened, each centred by -0.5 in coordinates
normalised by the image size) to M labelled joints, fitted by least squares; each joint is fitted only
on the samples where it is visible (as the official code does for CUB and Tai-Chi).
"""

from __future__ import annotations

import numpy as np

from edgereid.card import KeypointReadout
from edgereid.errors import InputError


def normalise(points: np.ndarray, sizes_wh: np.ndarray) -> np.ndarray:
    """Pixel points ``[N, K, 2]`` to centred normalised ``p / size - 0.5`` (the read-out's space);
    ``sizes_wh`` is ``[2]`` or per sample ``[N, 2]``."""
    sizes = np.asarray(sizes_wh, dtype=np.float64).reshape(-1, 1, 2)
    return np.asarray(points, dtype=np.float64) / sizes - 0.5


def fit_readout(points: np.ndarray, joints: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """The ``[2M, 2K]`` matrix with ``joints ~ points @ matrix.T`` (both centred normalised, ``[N, K, 2]``
    and ``[N, M, 2]``), one least-squares fit per joint over its visible samples."""
    points, joints = np.asarray(points, np.float64), np.asarray(joints, np.float64)
    if points.ndim != 3 or joints.ndim != 3 or len(points) != len(joints) or points.shape[2] != 2:
        raise InputError("read-out data of the wrong shape", expected="points [N, K, 2] and joints [N, M, 2]",
                         got=f"{points.shape} and {joints.shape}")
    x = points.reshape(len(points), -1)
    matrix = np.zeros((2 * joints.shape[1], x.shape[1]))
    for m in range(joints.shape[1]):
        rows = np.asarray(visible[:, m], bool)
        if rows.sum() < x.shape[1]:
            raise InputError(f"joint {m} is visible in only {rows.sum()} labelled crops",
                             expected=f"at least {x.shape[1]} (2K) to fit its read-out",
                             fix="label more crops (a few hundred is typical)")
        solution, *_ = np.linalg.lstsq(x[rows], joints[rows, m], rcond=None)
        matrix[2 * m:2 * m + 2] = solution.T
    return matrix


def apply_matrix(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Centred normalised points ``[N, K, 2]`` through a read-out matrix: joints ``[N, M, 2]``."""
    matrix = np.asarray(matrix, np.float64)
    k = np.asarray(points).shape[1]
    if matrix.ndim != 2 or matrix.shape[1] != 2 * k or matrix.shape[0] % 2:
        raise InputError("read-out matrix of the wrong shape", expected=f"[2M, {2 * k}] for K={k} points",
                         got=str(matrix.shape), fix="refit it with `edgereid keypoints readout` for this model")
    return (np.asarray(points, np.float64).reshape(len(points), -1) @ matrix.T).reshape(len(points), -1, 2)


def apply_readout(points: np.ndarray, readout: KeypointReadout, input_hw: tuple[int, int]) -> np.ndarray:
    """Named joints ``[N, M, 2]`` in input-crop pixels from K points ``[N, K, 2]`` in input-crop pixels,
    through the card's read-out (:func:`normalise`, :func:`apply_matrix`, then back to pixels)."""
    height, width = input_hw
    size = np.array([width, height], dtype=np.float64)
    joints = apply_matrix(normalise(points, size), readout.matrix)
    return ((joints + 0.5) * size).astype(np.float32)
