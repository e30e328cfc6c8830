"""The keypoint metrics of StableKeypoints (Hedlin et al., CVPR 2024) on its four regression benchmarks, computed
as its official evaluation does (``ubc-vision/StableKeypoints``, ``unsupervised_keypoints/eval.py``, function
``evaluate``, one branch per ``evaluation_method``), in NumPy, arrays in and one float out.

Every score is first computed per image and then averaged over images, as the official loop appends one value per
image to ``distances`` and reports their mean. Points are [N, K, 2] (x, y) in the pixels of the image the reader
returned (:mod:`edgereid.data.keypoint_sets`, :mod:`edgereid.data.keypoint_video_sets`).

* CelebA / MAFL (``inter_eye_distance``): :func:`inter_ocular_nme`.
* DeepFashion (``pck``): :func:`pck`, distance under 6 pixels of the 256 x 256 image.
* Tai-Chi (``mean_average_error``): :func:`summed_keypoint_error`, the per-image sum of errors of visible points.
* Human3.6M (``orientation_invariant``): :func:`orientation_invariant_error`, left/right swap allowed, in pixels of
  a 128 x 128 image.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgereid.errors import InputError
from edgereid.ops.scores import checked_array

# The official left/right pairs of the 32 Human3.6M joints (``swap_points`` in the evaluation). As released it
# lists (20, 28) and then (21, 28), likely meant as (21, 29); applied in order, joints 20 and 21 both take joint
# 28, joint 28 takes 21 and joint 29 stays. Kept as released so that scores match the paper's.
H36M_SWAP_PAIRS: tuple[tuple[int, int], ...] = ((1, 6), (2, 7), (3, 8), (4, 9), (5, 10), (17, 25), (18, 26),
                                                (19, 27), (20, 28), (21, 28), (22, 30), (23, 31))


def _points(pred: object, gt: object) -> tuple[np.ndarray, np.ndarray]:
    pred = checked_array(pred, "pred", 3)
    gt = checked_array(gt, "gt", 3)
    if pred.shape[-1] != 2 or pred.shape != gt.shape or pred.shape[0] == 0:
        raise InputError("pred and gt must be the same non-empty [N, K, 2] (x, y) points",
                         got=f"pred {pred.shape}, gt {gt.shape}")
    return pred, gt


def _per_image(values: object, n: int, name: str) -> np.ndarray:
    """``values`` as [N, 2] (width, height): one pair for every image, or one pair shared by all."""
    sizes = np.asarray(values, np.float64)
    sizes = np.broadcast_to(sizes, (n, 2)) if sizes.shape in ((2,), (1, 2)) else sizes
    if sizes.shape != (n, 2) or not np.all(np.isfinite(sizes)) or np.any(sizes <= 0):
        raise InputError(f"'{name}' must be positive (width, height), one pair or one per image",
                         expected=f"shape (2,) or ({n}, 2)", got=f"shape {np.shape(values)}")
    return sizes


def _mask(visible: object | None, shape: tuple[int, int]) -> np.ndarray:
    if visible is None:
        return np.ones(shape, bool)
    mask = checked_array(visible, "visible", 2, bool)
    if mask.shape != shape:
        raise InputError("'visible' does not match the points", expected=f"shape {shape}", got=f"shape {mask.shape}")
    return mask


def inter_ocular_nme(pred: np.ndarray, gt: np.ndarray, left_eye: int = 0, right_eye: int = 1,
                     image_size: np.ndarray | Sequence[float] | None = None) -> float:
    """Inter-ocular normalised mean error, as a fraction (the paper prints it x100, in percent).

    ``NME = mean_n [ mean_k ||pred[n,k] - gt[n,k]|| / ||gt[n,left_eye] - gt[n,right_eye]|| ]``: the eye landmarks
    of CelebA / MAFL's five are the eye centres (indices 0 and 1). The official loader divides x by the image
    width and y by its height before this ratio is taken, which for the 178 x 218 aligned faces weights x and y
    differently; pass ``image_size`` ((width, height), or [N, 2]) to reproduce that, leave it None for the ratio
    in pixels."""
    pred, gt = _points(pred, gt)
    if image_size is not None:
        sizes = _per_image(image_size, len(pred), "image_size")[:, None, :]
        pred, gt = pred / sizes, gt / sizes
    k = pred.shape[1]
    if not (0 <= left_eye < k and 0 <= right_eye < k) or left_eye == right_eye:
        raise InputError("the eye landmarks must be two different point indices", got=f"{left_eye}, {right_eye}")
    ocular = np.linalg.norm(gt[:, left_eye] - gt[:, right_eye], axis=-1)
    if np.any(ocular <= 0):
        raise InputError("an image's two eye landmarks coincide; its error cannot be normalised",
                         got=f"image {int(np.argmin(ocular))}")
    errors = np.linalg.norm(pred - gt, axis=-1) / ocular[:, None]
    return float(errors.mean(axis=1).mean())


def pck(pred: np.ndarray, gt: np.ndarray, threshold_px: float = 6.0, visible: np.ndarray | None = None) -> float:
    """Percentage of correct keypoints as a fraction: a point is correct when ``||pred - gt|| < threshold_px``
    (strictly, as the official ``(l2 < 6)``), in pixels of the 256 x 256 DeepFashion image.

    The official evaluation averages over every point of every image (its DeepFashion loader has no visibility);
    ``visible`` ([N, K] bool) restricts the count to the points it marks, per image, then averages images."""
    pred, gt = _points(pred, gt)
    if not threshold_px > 0:
        raise InputError("the PCK threshold must be a positive distance in pixels", got=str(threshold_px))
    mask = _mask(visible, pred.shape[:2])
    counted = mask.sum(axis=1)
    if not counted.all():
        raise InputError("an image has no visible point to score", got=f"image {int(np.argmin(counted))}")
    correct = (np.linalg.norm(pred - gt, axis=-1) < threshold_px) & mask
    return float((correct.sum(axis=1) / counted).mean())


def summed_keypoint_error(pred: np.ndarray, gt: np.ndarray, visible: np.ndarray | None = None) -> float:
    """Tai-Chi's error: per image the sum over visible points of ``||pred - gt||`` in pixels of the 256 x 256
    frame (the official ``(l2 * visible).sum()`` after scaling by 256), averaged over images. It is a sum, not a
    mean, so it grows with the number of visible points (18 joints at most)."""
    pred, gt = _points(pred, gt)
    mask = _mask(visible, pred.shape[:2])
    return float((np.linalg.norm(pred - gt, axis=-1) * mask).sum(axis=1).mean())


def swap_permutation(pairs: Sequence[tuple[int, int]], count: int) -> np.ndarray:
    """The index list that swaps each pair, assigned in order as the official ``swap_points`` does (a later pair
    overrides an earlier one that shares an index)."""
    order = np.arange(count)
    for a, b in pairs:
        if not (0 <= a < count and 0 <= b < count):
            raise InputError("a swap pair names a point that does not exist", got=f"({a}, {b}) for {count} points")
        order[a], order[b] = b, a
    return order


def orientation_invariant_error(pred: np.ndarray, gt: np.ndarray, image_size: np.ndarray | Sequence[float],
                                swap_pairs: Sequence[tuple[int, int]] = H36M_SWAP_PAIRS,
                                scale: float = 128.0) -> float:
    """Human3.6M's error: per image ``scale * min(e(pred), e(swap(pred)))`` with
    ``e(p) = mean_k ||p[k] / size - gt[k] / size||``, averaged over images.

    Points are divided by ``image_size`` ((width, height), or [N, 2]) to the unit square the official loader's
    keypoints live in, and the error is reported in pixels of a 128 x 128 image (the official ``*= 128``).
    ``swap(pred)`` exchanges left and right joints (``swap_pairs``), so a prediction mirrored front-to-back is
    not penalised."""
    pred, gt = _points(pred, gt)
    sizes = _per_image(image_size, len(pred), "image_size")[:, None, :]
    pred, gt = pred / sizes, gt / sizes
    swapped = pred[:, swap_permutation(swap_pairs, pred.shape[1])]
    straight = np.linalg.norm(pred - gt, axis=-1).mean(axis=1)
    mirrored = np.linalg.norm(swapped - gt, axis=-1).mean(axis=1)
    return float(scale * np.minimum(straight, mirrored).mean())
