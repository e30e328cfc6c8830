"""Keypoints from the outputs third-party pose models leave undecoded, in input-crop pixels ``[N, K, 2]``
(x, y) with a confidence ``[N, K]``, the same as edgereid's own in-graph soft-argmax gives.

- Raw heatmaps ``[N, K, h, w]`` (ViTPose, HRNet/SimpleBaseline): the argmax of each map, moved a quarter
  pixel towards the higher neighbour in x and in y (the standard refinement), scaled from heatmap to input
  pixels; the confidence is the map's maximum.
- UDP heatmaps (ViTPose, mmpose's ``UDPHeatmap``): the argmax refined by DARK's second-order Taylor step on
  the blurred log-heatmap, scaled so the first and last heatmap pixels land on the first and last input pixels
  (``x * W_in / (w - 1)``, as mmpose decodes them) rather than by ``W_in / w``.
- SimCC ``[N, K, W * r]`` and ``[N, K, H * r]`` (RTMPose): the argmax of each axis divided by the split ratio
  ``r`` (RTMPose's 2.0); the confidence is the smaller of the two maxima, as mmpose's decoder takes it.
"""

from __future__ import annotations

import cv2
import numpy as np

from edgereid.card import ModelCard

UDP_BLUR_KERNEL = 11  # mmpose UDPHeatmap's blur_kernel_size default


def decode_heatmaps(heatmaps: np.ndarray, input_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates in input pixels and confidences from raw heatmaps ``[N, K, h, w]``."""
    maps = np.asarray(heatmaps, dtype=np.float64)
    n, k, h, w = maps.shape
    flat = maps.reshape(n, k, h * w)
    best = flat.argmax(axis=2)
    confidence = flat.max(axis=2).astype(np.float32)
    ys, xs = np.divmod(best, w)
    coords = np.stack([xs, ys], axis=-1).astype(np.float64)
    rows = np.arange(n)[:, None]
    joints = np.arange(k)[None, :]
    inner_x = (xs > 0) & (xs < w - 1)
    inner_y = (ys > 0) & (ys < h - 1)
    dx = maps[rows, joints, ys, np.clip(xs + 1, 0, w - 1)] - maps[rows, joints, ys, np.clip(xs - 1, 0, w - 1)]
    dy = maps[rows, joints, np.clip(ys + 1, 0, h - 1), xs] - maps[rows, joints, np.clip(ys - 1, 0, h - 1), xs]
    coords[..., 0] += np.where(inner_x, 0.25 * np.sign(dx), 0.0)
    coords[..., 1] += np.where(inner_y, 0.25 * np.sign(dy), 0.0)
    height, width = input_hw
    coords *= np.array([width / w, height / h])
    return coords, confidence


def decode_heatmaps_udp(heatmaps: np.ndarray, input_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates in input pixels and confidences from UDP heatmaps ``[N, K, h, w]`` (see the module text).

    DARK (Zhang et al., CVPR 2020): blur each map (keeping its maximum), take its log, and move the argmax
    by ``-H^-1 g``, the gradient ``g`` and Hessian ``H`` from central differences; a step is kept only where
    the Hessian is invertible and the step stays within one heatmap pixel.
    """
    maps = np.asarray(heatmaps, dtype=np.float32)
    n, k, h, w = maps.shape
    flat = maps.reshape(n * k, h, w)
    confidence = flat.reshape(n * k, -1).max(axis=1)
    ys, xs = np.divmod(flat.reshape(n * k, -1).argmax(axis=1), w)
    coords = np.stack([xs, ys], axis=-1).astype(np.float64)
    for index, single in enumerate(flat):
        coords[index] += _dark_step(single, int(xs[index]), int(ys[index]), float(confidence[index]))
    height, width = input_hw
    coords *= np.array([width / max(w - 1, 1), height / max(h - 1, 1)])
    return coords.reshape(n, k, 2), confidence.reshape(n, k).astype(np.float32)


def _dark_step(heatmap: np.ndarray, x: int, y: int, peak: float) -> np.ndarray:
    """DARK's sub-pixel offset of one map's maximum ``peak`` at (x, y), zero where it cannot be taken."""
    blurred = cv2.GaussianBlur(heatmap, (UDP_BLUR_KERNEL, UDP_BLUR_KERNEL), 0)
    if blurred.max() > 0:
        blurred *= peak / blurred.max()
    log = np.log(np.clip(blurred, 1e-3, 50.0)).astype(np.float64)
    f = np.pad(log, 1, mode="edge")
    cx, cy = x + 1, y + 1
    gradient = np.array([f[cy, cx + 1] - f[cy, cx - 1], f[cy + 1, cx] - f[cy - 1, cx]]) / 2.0
    dxx = f[cy, cx + 1] - 2 * f[cy, cx] + f[cy, cx - 1]
    dyy = f[cy + 1, cx] - 2 * f[cy, cx] + f[cy - 1, cx]
    dxy = (f[cy + 1, cx + 1] - f[cy + 1, cx - 1] - f[cy - 1, cx + 1] + f[cy - 1, cx - 1]) / 4.0
    hessian = np.array([[dxx, dxy], [dxy, dyy]])
    if abs(np.linalg.det(hessian)) < 1e-12:
        return np.zeros(2)
    step = -np.linalg.solve(hessian, gradient)
    return step if np.all(np.abs(step) <= 1.0) else np.zeros(2)


def decode_simcc(simcc_x: np.ndarray, simcc_y: np.ndarray, split_ratio: float) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates in input pixels and confidences from SimCC logits ``[N, K, Wx]`` and ``[N, K, Wy]``."""
    x_logits = np.asarray(simcc_x, dtype=np.float64)
    y_logits = np.asarray(simcc_y, dtype=np.float64)
    coords = np.stack([x_logits.argmax(axis=2), y_logits.argmax(axis=2)], axis=-1) / float(split_ratio)
    confidence = np.minimum(x_logits.max(axis=2), y_logits.max(axis=2)).astype(np.float32)
    return coords.astype(np.float64), confidence


def decode_keypoints(card: ModelCard, outputs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Input-pixel coordinates ``[N, K, 2]`` (float64) and confidences ``[N, K]`` (float32) from a keypoint
    model's outputs by name, per the card's ``keypoint_decode``."""
    if card.keypoint_decode == "heatmap":
        return decode_heatmaps(outputs[card.output("heatmaps").name], (card.input.height, card.input.width))
    if card.keypoint_decode == "heatmap_udp":
        return decode_heatmaps_udp(outputs[card.output("heatmaps").name], (card.input.height, card.input.width))
    if card.keypoint_decode == "simcc":
        return decode_simcc(outputs[card.output("simcc_x").name], outputs[card.output("simcc_y").name],
                            card.simcc_split_ratio)
    return (np.asarray(outputs[card.output("coords").name], dtype=np.float64),
            np.asarray(outputs[card.output("confidence").name], dtype=np.float32).copy())
