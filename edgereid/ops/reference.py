"""The pure-NumPy specification of the preprocessing arithmetic (float64, no OpenCV).

:func:`preprocess_reference` is what :func:`edgereid.ops.preprocess.preprocess_batch` (OpenCV) and the
GPU kernel (``edgereid/runtime/kernels/crop_resize.cu``) are held to by the tests.
"""

from __future__ import annotations

import numpy as np

from edgereid.card import InputSpec
from edgereid.ops.geometry import CropPlan, invert_affine
from edgereid.ops.preprocess import check_nv12, fill_bgr, normalise_into


def resize_bilinear_reference(image: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Bilinear resize with half-pixel centres and edge clamping, in float64 (OpenCV INTER_LINEAR)."""
    in_h, in_w = image.shape[:2]
    ys = np.clip((np.arange(out_h) + 0.5) * (in_h / out_h) - 0.5, 0, in_h - 1)
    xs = np.clip((np.arange(out_w) + 0.5) * (in_w / out_w) - 0.5, 0, in_w - 1)
    return _sample_bilinear(image.astype(np.float64), ys[:, None], xs[None, :], fill=None)


def _sample_bilinear(image: np.ndarray, ys: np.ndarray, xs: np.ndarray,
                     fill: tuple[float, ...] | None) -> np.ndarray:
    """Sample ``image`` at real coordinates; outside it, ``fill`` (or clamped edges when None)."""
    height, width = image.shape[:2]
    ys, xs = np.broadcast_arrays(ys, xs)
    y0 = np.floor(ys).astype(np.int64)
    x0 = np.floor(xs).astype(np.int64)
    fy = (ys - y0)[..., None]
    fx = (xs - x0)[..., None]

    def tap(yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
        inside = (yy >= 0) & (yy < height) & (xx >= 0) & (xx < width)
        values = image[np.clip(yy, 0, height - 1), np.clip(xx, 0, width - 1)]
        if fill is not None:
            values = np.where(inside[..., None], values, np.asarray(fill, dtype=np.float64))
        return values

    top = tap(y0, x0) * (1 - fx) + tap(y0, x0 + 1) * fx
    bottom = tap(y0 + 1, x0) * (1 - fx) + tap(y0 + 1, x0 + 1) * fx
    return top * (1 - fy) + bottom * fy


def preprocess_reference(frames: list[np.ndarray], plan: CropPlan, spec: InputSpec) -> np.ndarray:
    """Pure-NumPy specification of :func:`preprocess_batch` (float64 arithmetic, float32 result in the card's
    layout)."""
    out = np.zeros(spec.batch_shape(len(plan)), dtype=np.float32)
    crops = spec.channel_first(out)
    fill = fill_bgr(spec)
    for i in range(len(plan)):
        frame = frames[plan.frame_index[i]]
        if plan.warps is not None:
            inverse = invert_affine(plan.warps[i])
            v, u = np.mgrid[0:spec.height, 0:spec.width].astype(np.float64)
            xs = inverse[0, 0] * u + inverse[0, 1] * v + inverse[0, 2]
            ys = inverse[1, 0] * u + inverse[1, 1] * v + inverse[1, 2]
            normalise_into(crops[:, i], _sample_bilinear(frame.astype(np.float64), ys, xs, fill), spec)
            continue
        x1, y1, x2, y2 = plan.boxes[i]
        px, py, pw, ph = plan.placement[i]
        resized = resize_bilinear_reference(frame[y1:y2, x1:x2], int(ph), int(pw))
        normalise_into(crops[:, i, py:py + ph, px:px + pw], resized, spec)
    return out


def nv12_to_bgr_reference(nv12: np.ndarray, height: int, width: int) -> np.ndarray:
    """The contract's NV12 arithmetic: BT.601 limited range, chroma repeated over each 2x2 block, luma below
    the nominal black (16) read as black, as OpenCV and the GPU kernel do."""
    check_nv12(nv12, height, width)
    y = np.maximum(nv12[:height].astype(np.float32) - 16.0, 0.0)
    uv = nv12[height:].reshape(height // 2, width // 2, 2).astype(np.float32) - 128.0
    uv = uv.repeat(2, axis=0).repeat(2, axis=1)
    u, v = uv[..., 0], uv[..., 1]
    r = 1.164383 * y + 1.596027 * v
    g = 1.164383 * y - 0.391762 * u - 0.812968 * v
    b = 1.164383 * y + 2.017232 * u
    return np.clip(np.rint(np.stack([b, g, r], axis=-1)), 0, 255).astype(np.uint8)
