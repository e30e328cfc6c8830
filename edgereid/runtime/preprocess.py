"""Preprocessing arithmetic: frames and boxes in, one normalised NCHW batch out.

The contract (design, "Preprocessing arithmetic"): boxes are ``(x1, y1, x2, y2)`` in frame pixels,
clipped to the frame and rounded to whole pixel edges; each box is resized with bilinear sampling
at half-pixel centres and edge clamping inside the box (OpenCV ``INTER_LINEAR``, no antialiasing);
``letterbox`` keeps the aspect ratio, centres the resized crop and fills the rest with the card's
mean (zero after normalisation); colour order and mean/std come from the card. Faces with 5-point
landmarks are warped by a similarity transform onto the standard template instead.

Two implementations share :func:`plan_crops`: :func:`preprocess_batch` (OpenCV, one box at a time
into a preallocated batch buffer; the CPU runtime) and :func:`preprocess_reference` (pure NumPy;
the specification the GPU kernel and the OpenCV path are tested against).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edgereid.card import InputSpec
from edgereid.errors import InputError

# ArcFace's 5-point template for a 112x112 crop: eyes, nose tip, mouth corners (x, y).
FACE_TEMPLATE_112 = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                              [41.5493, 92.3655], [70.7299, 92.2041]], dtype=np.float64)


@dataclass(frozen=True)
class CropPlan:
    """Where each crop comes from and how its pixels map back to the frame.

    ``boxes`` are the integer source boxes ``[N,4]``; ``placement`` is ``[N,4]`` (x, y, w, h) of the
    resized crop inside the model input (the whole input for ``stretch``); ``to_frame`` is ``[N,2,3]``,
    the affine map from model-input pixel coordinates to frame pixel coordinates (used to map
    keypoints back). ``warps`` is ``[N,2,3]`` frame-to-input similarity transforms for aligned faces,
    or None for box crops.
    """

    frame_index: np.ndarray
    boxes: np.ndarray
    placement: np.ndarray
    to_frame: np.ndarray
    warps: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.frame_index)


def validate_frame(frame: object, where: str = "frame") -> np.ndarray:
    """Check a BGR frame: uint8 ``[H, W, 3]``, non-empty, C-contiguous on return."""
    if not isinstance(frame, np.ndarray):
        raise InputError(f"{where} is not a NumPy array", expected="np.ndarray uint8 [H, W, 3] (BGR)",
                         got=type(frame).__name__, fix="decode the image with cv2.imread or a video reader")
    if frame.dtype != np.uint8:
        raise InputError(f"{where} has the wrong dtype", expected="uint8 (0-255)", got=str(frame.dtype),
                         fix="convert with np.clip(frame, 0, 255).astype(np.uint8)")
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise InputError(f"{where} has the wrong shape", expected="[H, W, 3] BGR", got=str(frame.shape),
                         fix="convert grey or BGRA frames with cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR / "
                             "COLOR_BGRA2BGR); NV12 with edgereid.runtime.preprocess.nv12_to_bgr")
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise InputError(f"{where} is empty", expected="height and width > 0", got=str(frame.shape))
    return np.ascontiguousarray(frame)


def validate_boxes(boxes: object, frame_shape: tuple[int, ...], where: str = "boxes") -> np.ndarray:
    """Clip boxes to the frame and round them to whole pixel edges.

    Boxes partly outside the frame are clipped. A box that is NaN/inf, inverted, entirely outside the
    frame, or narrower than one pixel after clipping raises :class:`InputError` naming its index:
    it is a detector bug the caller should see, not something to drop silently.
    """
    arr = np.asarray(boxes, dtype=np.float64)
    if arr.size == 0:
        return np.zeros((0, 4), dtype=np.int32)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise InputError(f"{where} have the wrong shape", expected="[N, 4] as (x1, y1, x2, y2) in frame pixels",
                         got=str(arr.shape))
    bad = np.flatnonzero(~np.isfinite(arr).all(axis=1))
    if bad.size:
        raise InputError(f"{where} contain NaN or inf", got=f"rows {bad.tolist()}",
                         fix="filter the detector output before submitting")
    height, width = frame_shape[:2]
    clipped = np.empty_like(arr)
    clipped[:, [0, 2]] = np.clip(arr[:, [0, 2]], 0, width)
    clipped[:, [1, 3]] = np.clip(arr[:, [1, 3]], 0, height)
    rounded = np.rint(clipped).astype(np.int32)
    degenerate = np.flatnonzero((rounded[:, 2] <= rounded[:, 0]) | (rounded[:, 3] <= rounded[:, 1]))
    if degenerate.size:
        i = int(degenerate[0])
        raise InputError(f"{where} {degenerate.tolist()} have no area inside the frame",
                         expected=f"x1 < x2 and y1 < y2 overlapping the {width}x{height} frame",
                         got=f"box {i} = {arr[i].tolist()}", fix="drop empty or off-frame boxes first")
    return rounded


def validate_landmarks(landmarks: object, count: int) -> np.ndarray:
    """Check 5-point face landmarks ``[N, 5, 2]`` (x, y) in frame pixels."""
    arr = np.asarray(landmarks, dtype=np.float64)
    if arr.shape != (count, 5, 2):
        raise InputError("face landmarks have the wrong shape", expected=f"[{count}, 5, 2] (x, y)",
                         got=str(arr.shape), fix="give one 5-point set per face box, or none")
    if not np.isfinite(arr).all():
        raise InputError("face landmarks contain NaN or inf")
    return arr


def whole_image_boxes(images: list[np.ndarray]) -> np.ndarray:
    """One box covering each image ``[N, 4]`` (x1, y1, x2, y2): pictures that already are crops."""
    return np.array([[0, 0, image.shape[1], image.shape[0]] for image in images], np.int32).reshape(-1, 4)


def plan_whole_images(images: list[np.ndarray], spec: InputSpec, landmarks: np.ndarray | None = None) -> CropPlan:
    """The crop plan of pictures that already are crops, one per frame: each whole image into the model
    input (``to_frame`` then maps model-input pixels to that picture's pixels)."""
    return plan_crops(np.arange(len(images)), whole_image_boxes(images), spec, landmarks)


def check_landmarks_in_boxes(landmarks: np.ndarray, boxes: np.ndarray, slack: float = 0.25) -> None:
    """Each face's landmarks must lie in its box, widened by ``slack`` of the box size on every side
    (detectors put profile landmarks slightly outside). Landmarks far outside mean they belong to
    another face or are in crop rather than frame coordinates: aligning them would embed the wrong
    pixels, so it is an error naming the face."""
    size = (boxes[:, 2:] - boxes[:, :2]).astype(np.float64)[:, None, :]
    low = boxes[:, None, :2] - slack * size
    high = boxes[:, None, 2:] + slack * size
    outside = np.flatnonzero(((landmarks < low) | (landmarks > high)).any(axis=(1, 2)))
    if outside.size:
        i = int(outside[0])
        raise InputError(f"face landmarks {outside.tolist()} lie outside their face boxes",
                         expected=f"points within the box (+/-{slack:.0%} of its size), in frame pixels (x, y)",
                         got=f"face {i}: box {boxes[i].tolist()}, landmarks {np.round(landmarks[i], 1).tolist()}",
                         fix="pass each box's own landmarks in frame (not crop) coordinates, or none")


def _placement(boxes: np.ndarray, spec: InputSpec) -> np.ndarray:
    widths = (boxes[:, 2] - boxes[:, 0]).astype(np.float64)
    heights = (boxes[:, 3] - boxes[:, 1]).astype(np.float64)
    n = len(boxes)
    if spec.resize == "stretch":
        return np.tile(np.array([0, 0, spec.width, spec.height], dtype=np.int32), (n, 1))
    scale = np.minimum(spec.width / widths, spec.height / heights)
    new_w = np.clip(np.rint(widths * scale), 1, spec.width).astype(np.int32)
    new_h = np.clip(np.rint(heights * scale), 1, spec.height).astype(np.int32)
    return np.stack([(spec.width - new_w) // 2, (spec.height - new_h) // 2, new_w, new_h], axis=1)


def similarity_to_template(landmarks: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Least-squares similarity (Umeyama) mapping 5 frame landmarks onto the template scaled to ``size``."""
    height, width = size
    dst = FACE_TEMPLATE_112 * np.array([width / 112.0, height / 112.0])
    src_mean, dst_mean = landmarks.mean(0), dst.mean(0)
    src_c, dst_c = landmarks - src_mean, dst - dst_mean
    cov = dst_c.T @ src_c / len(landmarks)
    u, s, vt = np.linalg.svd(cov)
    d = np.diag([1.0, np.sign(np.linalg.det(u @ vt))])
    rotation = u @ d @ vt
    scale = np.trace(np.diag(s) @ d) / max(src_c.var(0).sum(), 1e-12)
    matrix = np.zeros((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = dst_mean - scale * rotation @ src_mean
    return matrix


def _invert_affine(matrix: np.ndarray) -> np.ndarray:
    full = np.vstack([matrix, [0.0, 0.0, 1.0]])
    return np.linalg.inv(full)[:2]


def plan_crops(frame_index: np.ndarray, boxes: np.ndarray, spec: InputSpec,
               landmarks: np.ndarray | None = None) -> CropPlan:
    """Geometry of a batch: integer boxes (already validated), placements, maps back to the frame."""
    frame_index = np.asarray(frame_index, dtype=np.int64)
    placement = _placement(boxes, spec)
    to_frame = np.zeros((len(boxes), 2, 3))
    if landmarks is not None:
        warps = np.stack([similarity_to_template(lm, (spec.height, spec.width)) for lm in landmarks])
        to_frame = np.stack([_invert_affine(w) for w in warps]) if len(warps) else to_frame
        return CropPlan(frame_index, boxes, placement, to_frame, warps)
    # Half-pixel centres: input pixel u inside the placement samples box pixel (u - px + 0.5) * s - 0.5.
    sx = (boxes[:, 2] - boxes[:, 0]) / placement[:, 2]
    sy = (boxes[:, 3] - boxes[:, 1]) / placement[:, 3]
    to_frame[:, 0, 0] = sx
    to_frame[:, 0, 2] = boxes[:, 0] + (0.5 - placement[:, 0]) * sx - 0.5
    to_frame[:, 1, 1] = sy
    to_frame[:, 1, 2] = boxes[:, 1] + (0.5 - placement[:, 1]) * sy - 0.5
    return CropPlan(frame_index, boxes, placement, to_frame)


def _normalise_into(dst: np.ndarray, pixels_bgr: np.ndarray, spec: InputSpec) -> None:
    """Write ``(pixel - mean) / std`` in the card's colour order into a channel-first view.

    ``dst`` is ``[3, ...]`` and ``pixels_bgr`` is ``[..., 3]`` with the same middle shape.
    """
    order = (2, 1, 0) if spec.color_order == "RGB" else (0, 1, 2)
    for out_channel, src_channel in enumerate(order):
        np.subtract(pixels_bgr[..., src_channel], spec.mean[out_channel], out=dst[out_channel],
                    dtype=np.float32, casting="unsafe")
        dst[out_channel] *= np.float32(1.0 / spec.std[out_channel])


def fill_bgr(spec: InputSpec) -> tuple[float, float, float]:
    """The card's mean as a BGR pixel: what letterbox bars and warp borders are filled with."""
    mean = spec.mean
    return (mean[2], mean[1], mean[0]) if spec.color_order == "RGB" else tuple(mean)


def allocate_batch(spec: InputSpec, max_batch: int) -> np.ndarray:
    """A ``[max_batch, 3, H, W]`` buffer of the card's input dtype that :func:`preprocess_batch` fills."""
    return np.zeros((max_batch, 3, spec.height, spec.width), dtype=np.dtype(spec.dtype))


def allocate_staging(spec: InputSpec, max_batch: int) -> np.ndarray:
    """The uint8 ``[max_batch, H, W, 3]`` buffer crops are resized into before normalisation."""
    return np.zeros((max_batch, spec.height, spec.width, 3), dtype=np.uint8)


def preprocess_batch(frames: list[np.ndarray], plan: CropPlan, spec: InputSpec,
                     out: np.ndarray | None = None, staging: np.ndarray | None = None) -> np.ndarray:
    """OpenCV implementation: every crop of ``plan`` into ``out[:len(plan)]`` (allocated when None).

    Crops are resized into a uint8 ``staging`` buffer ``[N, H, W, 3]`` one box at a time, then the
    whole batch is normalised and packed NCHW in six vectorised operations.
    """
    count = len(plan)
    if out is None:
        out = allocate_batch(spec, count)
    if staging is None:
        staging = np.empty((count, spec.height, spec.width, 3), dtype=np.uint8)
    if out.shape[0] < count or out.shape[1:] != (3, spec.height, spec.width) or staging.shape[0] < count:
        raise InputError("batch buffer too small for the crops", expected=f"[>={count}, 3, "
                         f"{spec.height}, {spec.width}]", got=str(out.shape))
    crop_into(staging, frames, plan, spec)
    normalise_batch(staging[:count], spec, out[:count])
    if spec.resize == "letterbox" and plan.warps is None:
        _zero_letterbox_bars(out, plan)
    return out[:count]


def crop_into(staging: np.ndarray, frames: list[np.ndarray], plan: CropPlan, spec: InputSpec) -> np.ndarray:
    """Resize (or warp) every crop of ``plan`` into uint8 ``staging[:len(plan)]``, one box at a time.

    Letterbox bars are left as they were: callers fill them (with zeros after normalisation, or with
    the mean colour for uint8 crops).
    """
    fill = fill_bgr(spec)
    for i in range(len(plan)):
        frame = frames[plan.frame_index[i]]
        if plan.warps is not None:
            cv2.warpAffine(frame, plan.warps[i], (spec.width, spec.height), dst=staging[i],
                           flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=fill)
            continue
        x1, y1, x2, y2 = plan.boxes[i]
        px, py, pw, ph = plan.placement[i]
        staging[i, py:py + ph, px:px + pw] = cv2.resize(frame[y1:y2, x1:x2], (int(pw), int(ph)),
                                                        interpolation=cv2.INTER_LINEAR)
    return staging[:len(plan)]


def normalise_batch(staging: np.ndarray, spec: InputSpec, out: np.ndarray | None = None) -> np.ndarray:
    """uint8 BGR crops ``[N, H, W, 3]`` to the model's float32 ``[N, 3, H, W]`` input, per the card."""
    if out is None:
        out = np.empty((len(staging), 3, spec.height, spec.width), dtype=np.float32)
    _normalise_into(out.transpose(1, 0, 2, 3), staging, spec)
    return out


def _zero_letterbox_bars(out: np.ndarray, plan: CropPlan) -> None:
    """Set the padding around each letterboxed crop to the mean (zero after normalisation)."""
    for i, (px, py, pw, ph) in enumerate(plan.placement):
        out[i, :, :py] = 0.0
        out[i, :, py + ph:] = 0.0
        out[i, :, :, :px] = 0.0
        out[i, :, :, px + pw:] = 0.0


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
    """Pure-NumPy specification of :func:`preprocess_batch` (float64 arithmetic, float32 result)."""
    out = np.zeros((len(plan), 3, spec.height, spec.width), dtype=np.float32)
    fill = fill_bgr(spec)
    for i in range(len(plan)):
        frame = frames[plan.frame_index[i]]
        if plan.warps is not None:
            inverse = _invert_affine(plan.warps[i])
            v, u = np.mgrid[0:spec.height, 0:spec.width].astype(np.float64)
            xs = inverse[0, 0] * u + inverse[0, 1] * v + inverse[0, 2]
            ys = inverse[1, 0] * u + inverse[1, 1] * v + inverse[1, 2]
            _normalise_into(out[i], _sample_bilinear(frame.astype(np.float64), ys, xs, fill), spec)
            continue
        x1, y1, x2, y2 = plan.boxes[i]
        px, py, pw, ph = plan.placement[i]
        resized = resize_bilinear_reference(frame[y1:y2, x1:x2], int(ph), int(pw))
        _normalise_into(out[i][:, py:py + ph, px:px + pw], resized, spec)
    return out


def nv12_to_bgr(nv12: np.ndarray, height: int, width: int) -> np.ndarray:
    """BT.601 limited-range NV12 (``[H*3/2, W]`` uint8) to a BGR frame, the contract's arithmetic."""
    if nv12.dtype != np.uint8 or nv12.shape != (height * 3 // 2, width) or height % 2 or width % 2:
        raise InputError("NV12 frame has the wrong layout", expected=f"uint8 [{height * 3 // 2}, {width}] "
                         "with even height and width", got=f"{nv12.dtype} {nv12.shape}")
    y = nv12[:height].astype(np.float32) - 16.0
    uv = nv12[height:].reshape(height // 2, width // 2, 2).astype(np.float32) - 128.0
    uv = uv.repeat(2, axis=0).repeat(2, axis=1)
    u, v = uv[..., 0], uv[..., 1]
    r = 1.164383 * y + 1.596027 * v
    g = 1.164383 * y - 0.391762 * u - 0.812968 * v
    b = 1.164383 * y + 2.017232 * u
    return np.clip(np.rint(np.stack([b, g, r], axis=-1)), 0, 255).astype(np.uint8)
