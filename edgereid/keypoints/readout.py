"""The standard linear read-out of unsupervised keypoints (``methods.md`` §3.3), and
``edgereid keypoints readout``, which stores it in a keypoint student's card.

A linear map without bias from the K points (x, y flattened, each centred by -0.5 in coordinates
normalised by the image size) to M labelled joints, fitted by least squares; each joint is fitted only
on the samples where it is visible (as the official code does for CUB and Tai-Chi).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgereid.card import COCO17_JOINTS, KeypointReadout
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


def store_readout(model: str | Path, labelled: str | Path, out: str | Path, limit: int | None = None) -> tuple[Path, int]:
    """Fit the read-out of a K-point student ONNX on a labelled crop folder and write the model with it in
    its card (joint names and skeleton from the folder); returns the path and the number of crops used."""
    from edgereid.card import read_card, write_card
    from edgereid.keypoints.crops import read_labelled_crops
    from edgereid.runtime.postprocess import points_to_input
    from edgereid.models.keypoints import COCO17_SKELETON
    from edgereid.runtime.backends import load_backend
    from edgereid.runtime.model import CropModel
    from edgereid.runtime.preprocess import plan_whole_images

    card = read_card(model)
    if card.task != "keypoints":
        raise InputError(f"{model} is a {card.task} model", expected="a keypoint student ONNX")
    crops = read_labelled_crops(labelled, limit)
    runner = CropModel(load_backend(model))
    plan = plan_whole_images(crops.images, card.input)
    predicted = points_to_input(runner.run(crops.images, plan).keypoints, plan.to_frame)
    truth = points_to_input(crops.keypoints[..., :2], plan.to_frame)
    size = np.array([card.input.width, card.input.height])
    matrix = fit_readout(normalise(predicted, size), normalise(truth, size), crops.keypoints[..., 2] > 0)
    readout = KeypointReadout(matrix=matrix.tolist(), joint_names=crops.joint_names)
    skeleton = COCO17_SKELETON if crops.joint_names == COCO17_JOINTS else ()
    return write_card(model, card.replace(readout=readout, skeleton=skeleton), out), len(crops.images)
