"""Crop geometry shared by training and deployment: which pixels each crop takes and where they land.

Boxes are ``(x1, y1, x2, y2)`` in frame pixels, clipped to the frame and rounded to whole pixel edges
(:func:`validate_boxes`). A :class:`CropPlan` holds, for a batch of crops, the source boxes, where each
resized crop sits inside the model input (the whole input for ``stretch``, centred for ``letterbox``),
and the affine map from model-input pixels back to frame pixels. Faces with 5-point landmarks are
placed by a similarity transform onto the ArcFace template instead (:func:`similarity_to_template`).
"""

from __future__ import annotations

from dataclasses import dataclass

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

    def slice(self, start: int, stop: int) -> "CropPlan":
        """The crops ``start:stop`` of this plan (views, not copies)."""
        warps = None if self.warps is None else self.warps[start:stop]
        return CropPlan(self.frame_index[start:stop], self.boxes[start:stop], self.placement[start:stop],
                        self.to_frame[start:stop], warps)


def as_box_array(values: object, where: str = "boxes") -> np.ndarray:
    """Boxes (or landmarks) as a float64 array: real numbers only. Generators, strings, ragged lists, complex
    numbers and other objects are an :class:`InputError`, never a NumPy exception."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
        raise InputError(f"{where} are not an array", expected="a NumPy array or a list of [x1, y1, x2, y2] rows",
                         got=type(values).__name__)
    try:
        arr = np.asarray(values)
    except ValueError as exc:
        raise InputError(f"{where} are ragged", expected="rows of the same length", got=str(exc)[:120]) from exc
    if arr.dtype.kind not in "biuf":
        raise InputError(f"{where} are not real numbers", expected="int or float values", got=str(arr.dtype))
    return arr.astype(np.float64)


def validate_boxes(boxes: object, frame_shape: tuple[int, ...], where: str = "boxes") -> np.ndarray:
    """Clip boxes to the frame and round them to whole pixel edges.

    Boxes partly outside the frame are clipped. A box that is NaN/inf, inverted, entirely outside the
    frame, or narrower than one pixel after clipping raises :class:`InputError` naming its index:
    it is a detector bug the caller should see, not something to drop silently.
    """
    arr = as_box_array(boxes, where)
    if arr.size == 0 and (arr.ndim == 1 or arr.shape[0] == 0):  # no boxes; [N, 0] is a malformed array
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


# Five landmarks closer than this (RMS distance to their centre, px) leave the similarity solve degenerate.
MIN_LANDMARK_SPREAD_PX = 1.0


def validate_landmarks(landmarks: object, count: int) -> np.ndarray:
    """Check 5-point face landmarks ``[N, 5, 2]`` (x, y) in frame pixels."""
    arr = as_box_array(landmarks, "face landmarks")
    if arr.shape != (count, 5, 2):
        raise InputError("face landmarks have the wrong shape", expected=f"[{count}, 5, 2] (x, y)",
                         got=str(arr.shape), fix="give one 5-point set per face box, or none")
    if not np.isfinite(arr).all():
        raise InputError("face landmarks contain NaN or inf")
    spread = np.sqrt(((arr - arr.mean(axis=1, keepdims=True)) ** 2).sum(axis=2).mean(axis=1))
    degenerate = np.flatnonzero(spread < MIN_LANDMARK_SPREAD_PX)
    if degenerate.size:
        i = int(degenerate[0])
        raise InputError(f"face landmarks {degenerate.tolist()} (nearly) coincide: no alignment can be solved "
                         "from them", expected=f"5 points spread at least {MIN_LANDMARK_SPREAD_PX} px around their "
                         "centre", got=f"face {i}: {np.round(arr[i], 2).tolist()}",
                         fix="pass the detector's landmarks for that face, or none (the box is cropped instead)")
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


def mirror_placement(placement: np.ndarray, width: int, flipped: np.ndarray | None = None) -> np.ndarray:
    """Where each crop's content sits after mirroring the crop left-right (those ``flipped``, or all):
    ``x -> width - x - w``. Letterboxed content is centred, but an odd margin puts it one pixel off centre,
    so a mirrored crop's bars are not the unmirrored ones."""
    placement = np.array(placement, copy=True)
    rows = slice(None) if flipped is None else np.asarray(flipped, bool)
    placement[rows, 0] = width - placement[rows, 0] - placement[rows, 2]
    return placement


def template_points(spec: InputSpec) -> np.ndarray:
    """Where an aligned face's 5 landmarks land in the model input ``[5, 2]`` (x, y), per the card: its custom
    points, InsightFace's convention (a size that is not a multiple of 112 scales the 112 template by
    size/128 and shifts it 8 px right per 128, as ``estimate_norm`` does; per axis for non-square inputs), or
    the ArcFace template scaled to the input."""
    if spec.face_points:
        return np.asarray(spec.face_points, dtype=np.float64)
    points = FACE_TEMPLATE_112.copy()
    for axis, side in ((0, spec.width), (1, spec.height)):
        if spec.face_template == "insightface" and side % 112:
            points[:, axis] = points[:, axis] * side / 128.0 + (8.0 * side / 128.0 if axis == 0 else 0.0)
        else:
            points[:, axis] *= side / 112.0
    return points


def similarity_to_template(landmarks: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (Umeyama) mapping 5 frame landmarks onto the 5 template points ``dst``."""
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


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    full = np.vstack([matrix, [0.0, 0.0, 1.0]])
    return np.linalg.inv(full)[:2]


def plan_crops(frame_index: np.ndarray, boxes: np.ndarray, spec: InputSpec,
               landmarks: np.ndarray | None = None) -> CropPlan:
    """Geometry of a batch: integer boxes (already validated), placements, maps back to the frame."""
    frame_index = np.asarray(frame_index, dtype=np.int64)
    placement = _placement(boxes, spec)
    to_frame = np.zeros((len(boxes), 2, 3))
    if landmarks is not None:
        dst = template_points(spec)
        warps = np.stack([similarity_to_template(lm, dst) for lm in landmarks])
        to_frame = np.stack([invert_affine(w) for w in warps]) if len(warps) else to_frame
        return CropPlan(frame_index, boxes, placement, to_frame, warps)
    # Half-pixel centres: input pixel u inside the placement samples box pixel (u - px + 0.5) * s - 0.5.
    sx = (boxes[:, 2] - boxes[:, 0]) / placement[:, 2]
    sy = (boxes[:, 3] - boxes[:, 1]) / placement[:, 3]
    to_frame[:, 0, 0] = sx
    to_frame[:, 0, 2] = boxes[:, 0] + (0.5 - placement[:, 0]) * sx - 0.5
    to_frame[:, 1, 1] = sy
    to_frame[:, 1, 2] = boxes[:, 1] + (0.5 - placement[:, 1]) * sy - 0.5
    return CropPlan(frame_index, boxes, placement, to_frame)


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
