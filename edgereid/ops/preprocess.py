"""Preprocessing arithmetic: frames and a crop plan in, one normalised NCHW batch out (OpenCV).

The contract (design, "Preprocessing arithmetic"): each box is resized with bilinear sampling at
half-pixel centres and edge clamping inside the box (OpenCV ``INTER_LINEAR``, no antialiasing);
``letterbox`` keeps the aspect ratio, centres the resized crop and fills the rest so that it is exactly
zero after normalisation (:func:`zero_letterbox_bars`); colour order and mean/std come from the card.
Faces with landmarks are warped by their plan's similarity transform.

:func:`preprocess_batch` is the CPU runtime's implementation (one box at a time into a preallocated
batch buffer); :func:`edgereid.ops.reference.preprocess_reference` is the pure-NumPy specification it,
and the GPU kernel, are tested against. Training feeds its uint8 crops through the same
:func:`normalise_batch`.
"""

from __future__ import annotations

import cv2
import numpy as np

from edgereid.card import InputSpec
from edgereid.errors import InputError
from edgereid.ops.geometry import CropPlan


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
                             "COLOR_BGRA2BGR); NV12 with edgereid.ops.preprocess.nv12_to_bgr")
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise InputError(f"{where} is empty", expected="height and width > 0", got=str(frame.shape))
    return np.ascontiguousarray(frame)


# BT.601 luma weights of a BGR pixel, what a 1-channel model sees (OpenCV's COLOR_BGR2GRAY).
GREY_WEIGHTS_BGR = (0.114, 0.587, 0.299)


def normalise_into(dst: np.ndarray, pixels_bgr: np.ndarray, spec: InputSpec) -> None:
    """Write the card's normalisation of BGR pixels into a channel-first view: ``(pixel - mean) / std`` per
    channel in the card's colour order (or of the grey luma for 1-channel cards; raw for ``normalize: none``).

    ``dst`` is ``[C, ...]`` and ``pixels_bgr`` is ``[..., 3]`` with the same middle shape.
    """
    mean, std = spec.channel_stats()
    if spec.channels == 1:
        grey = sum(np.float32(w) * pixels_bgr[..., c].astype(np.float32) for c, w in enumerate(GREY_WEIGHTS_BGR))
        sources = [np.rint(grey) if dst.dtype == np.uint8 else grey]
    else:
        order = (2, 1, 0) if spec.color_order == "RGB" else (0, 1, 2)
        planes = _planes(pixels_bgr)
        sources = [planes[c] for c in order]
    for out_channel, source in enumerate(sources):
        if dst.dtype == np.uint8 and source.dtype == np.uint8:  # raw pixels (normalize: none): a copy
            np.copyto(dst[out_channel], source)
            continue
        np.subtract(source, mean[out_channel], out=dst[out_channel], dtype=np.float32, casting="unsafe")
        if std[out_channel] != 1.0:
            dst[out_channel] *= np.float32(1.0 / std[out_channel])


def _planes(pixels: np.ndarray) -> list[np.ndarray]:
    """The three channels of ``[..., 3]`` pixels as contiguous planes: OpenCV splits a contiguous uint8 image in
    one pass, and arithmetic on contiguous planes runs ~1.5x faster than on stride-3 views (measured, batch
    32 at 256x128); other inputs get the strided views."""
    if pixels.dtype != np.uint8 or not pixels.flags.c_contiguous or pixels.ndim < 3:
        return [pixels[..., c] for c in range(3)]
    return [plane.reshape(pixels.shape[:-1]) for plane in cv2.split(pixels.reshape(-1, pixels.shape[-2], 3))]


def fill_bgr(spec: InputSpec) -> tuple[float, float, float]:
    """The card's mean as a BGR pixel: what letterbox bars and warp borders are filled with (so they are zero
    after normalisation; black for ``normalize: none``)."""
    mean, _ = spec.channel_stats()
    if spec.channels == 1:
        return (mean[0],) * 3
    return (mean[2], mean[1], mean[0]) if spec.color_order == "RGB" else tuple(mean)


def allocate_batch(spec: InputSpec, max_batch: int) -> np.ndarray:
    """A ``max_batch`` buffer in the card's layout and dtype that :func:`preprocess_batch` fills."""
    return np.zeros(spec.batch_shape(max_batch), dtype=np.dtype(spec.dtype))


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
    if out.shape[0] < count or out.shape[1:] != spec.batch_shape(None)[1:] or staging.shape[0] < count:
        raise InputError("batch buffer too small for the crops", expected=f"[>={count}, "
                         f"{', '.join(map(str, spec.batch_shape(None)[1:]))}]", got=str(out.shape))
    crop_into(staging, frames, plan, spec)
    normalise_batch(staging[:count], spec, out[:count], None if plan.warps is not None else plan.placement)
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


def normalise_batch(staging: np.ndarray, spec: InputSpec, out: np.ndarray | None = None,
                    placement: np.ndarray | None = None) -> np.ndarray:
    """uint8 BGR crops ``[N, H, W, 3]`` to the model's input per the card (layout, dtype, channels, normalisation).

    The one letterbox fill policy, for the runtime and training alike: with ``placement`` (``[N, 4]``
    ``(x, y, w, h)`` of each crop's content, :attr:`CropPlan.placement`, mirrored with the crop by
    :func:`edgereid.ops.geometry.mirror_placement`) a letterbox card's bars are exactly zero, whatever
    the staging held there (the mean rounded to uint8, or augmented pixels)."""
    if out is None:
        out = np.empty(spec.batch_shape(len(staging)), dtype=np.dtype(spec.dtype))
    channel_first = spec.channel_first(out)
    normalise_into(channel_first, staging, spec)
    if placement is not None and spec.resize == "letterbox":
        zero_letterbox_bars(channel_first, placement)
    return out


def zero_letterbox_bars(channel_first: np.ndarray, placement: np.ndarray) -> None:
    """Set the padding around each letterboxed crop ``[N, 4]`` (x, y, w, h) to zero (the mean) in a
    ``[C, N, H, W]`` view of the batch."""
    for i, (px, py, pw, ph) in enumerate(np.asarray(placement)):
        channel_first[:, i, :py] = 0
        channel_first[:, i, py + ph:] = 0
        channel_first[:, i, :, :px] = 0
        channel_first[:, i, :, px + pw:] = 0


def check_nv12(nv12: np.ndarray, height: int, width: int) -> None:
    """An NV12 frame is uint8 ``[H*3/2, W]`` with even height and width."""
    if not isinstance(nv12, np.ndarray) or nv12.dtype != np.uint8 or nv12.shape != (height * 3 // 2, width) \
            or height % 2 or width % 2:
        raise InputError("NV12 frame has the wrong layout", expected=f"uint8 [{height * 3 // 2}, {width}] "
                         "with even height and width", got=f"{getattr(nv12, 'dtype', type(nv12).__name__)} "
                                                           f"{getattr(nv12, 'shape', '')}")


def nv12_to_bgr(nv12: np.ndarray, height: int, width: int) -> np.ndarray:
    """BT.601 limited-range NV12 (``[H*3/2, W]`` uint8) to a BGR frame, through OpenCV (20-30x the NumPy
    specification :func:`edgereid.ops.reference.nv12_to_bgr_reference`, within 1 grey level of it)."""
    check_nv12(nv12, height, width)
    return cv2.cvtColor(np.ascontiguousarray(nv12), cv2.COLOR_YUV2BGR_NV12)
