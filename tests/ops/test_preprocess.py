import cv2
import numpy as np
import pytest

from edgereid.card import InputSpec
from edgereid.errors import InputError
from edgereid.ops.geometry import points_to_frame
from edgereid.ops.preprocess import nv12_to_bgr, preprocess_batch, validate_frame
from edgereid.ops.geometry import plan_crops, validate_boxes
from edgereid.ops.reference import preprocess_reference

BOXES = [[10.2, 20, 100, 220], [-5, 5, 30, 15], [200, 100, 330, 260], [0, 0, 320, 240], [50, 60, 53, 61]]
# cv2.resize/warpAffine on uint8 use fixed-point weights; the NumPy reference is exact float64.
MAX_ABS_ERROR_GREY_LEVELS = 1.0
# cv2.warpAffine also quantises sample positions to 1/32 pixel (measured: 1.56 on this noisy texture).
MAX_ABS_ERROR_WARP_GREY_LEVELS = 2.0


@pytest.mark.parametrize("resize", ["stretch", "letterbox"])
@pytest.mark.parametrize("color_order", ["RGB", "BGR"])
def test_opencv_path_matches_the_numpy_reference(frames, resize, color_order):
    spec = InputSpec(height=64, width=48, resize=resize, color_order=color_order)
    boxes = validate_boxes(BOXES, frames[0].shape)
    plan = plan_crops(np.array([0, 1, 2, 0, 2]), boxes, spec)
    fast = preprocess_batch(frames, plan, spec)
    reference = preprocess_reference(frames, plan, spec)
    error = np.abs(fast - reference) * np.array(spec.std, dtype=np.float32)[None, :, None, None]
    assert error.max() <= MAX_ABS_ERROR_GREY_LEVELS, f"max abs error {error.max():.3f} grey levels"


def test_aligned_faces_match_the_reference(frames):
    spec = InputSpec(height=32, width=32, mean=(127.5,) * 3, std=(128.0,) * 3)
    landmarks = np.array([[[100, 100], [130, 98], [115, 115], [104, 130], [126, 129]],
                          [[20, 20], [30, 20], [25, 26], [21, 31], [29, 31]]], dtype=np.float64)
    boxes = validate_boxes([[90, 85, 140, 140], [15, 12, 35, 36]], frames[0].shape)
    plan = plan_crops(np.array([0, 1]), boxes, spec, landmarks)
    error = np.abs(preprocess_batch(frames, plan, spec) - preprocess_reference(frames, plan, spec)) * 128.0
    assert error.max() <= MAX_ABS_ERROR_WARP_GREY_LEVELS
    # the landmarks land on the template
    warped = np.einsum("nij,nkj->nki", plan.warps[:, :, :2], landmarks) + plan.warps[:, None, :, 2]
    template = np.array([[38.29, 51.70], [73.53, 51.50], [56.03, 71.74], [41.55, 92.37], [70.73, 92.20]]) * 32 / 112
    assert np.abs(warped - template).max() < 2.0


def test_letterbox_fills_with_the_mean_and_keeps_aspect(frames):
    spec = InputSpec(height=64, width=64, resize="letterbox")
    boxes = validate_boxes([[0, 0, 32, 128]], (240, 320))
    plan = plan_crops(np.array([0]), boxes, spec)
    assert plan.placement[0].tolist() == [24, 0, 16, 64]
    batch = preprocess_batch(frames, plan, spec)
    assert np.all(batch[0, :, :, :24] == 0) and np.all(batch[0, :, :, 40:] == 0)


@pytest.mark.parametrize("resize", ["stretch", "letterbox"])
def test_crop_coordinates_map_back_to_the_frame(resize):
    """A dot drawn in the frame is found at the mapped-back position of its crop pixel."""
    frame = np.zeros((300, 400, 3), dtype=np.uint8)
    dot = np.array([170.0, 140.0])
    cv2.circle(frame, tuple(int(v) for v in dot), 3, (255, 255, 255), -1)
    spec = InputSpec(height=128, width=64, resize=resize)
    boxes = validate_boxes([[120, 40, 240, 260]], frame.shape)
    plan = plan_crops(np.array([0]), boxes, spec)
    crop = preprocess_batch([frame], plan, spec)[0].mean(0)
    weights = np.clip(crop - 1.0, 0, None)  # the white dot only (letterbox bars are 0)
    v, u = np.mgrid[0:128, 0:64]
    centroid = np.array([(weights * u).sum(), (weights * v).sum()]) / weights.sum()
    back = points_to_frame(centroid[None, None, :], plan.to_frame)[0, 0]
    assert np.linalg.norm(back - dot) < 1.5


@pytest.mark.parametrize("frame, message", [
    (np.zeros((10, 10, 3), np.float32), "wrong dtype"),
    (np.zeros((10, 10), np.uint8), "wrong shape"),
    (np.zeros((10, 10, 4), np.uint8), "wrong shape"),
    (np.zeros((0, 10, 3), np.uint8), "empty"),
    ([[1, 2, 3]], "not a NumPy array"),
])
def test_bad_frames(frame, message):
    with pytest.raises(InputError, match=message):
        validate_frame(frame)


@pytest.mark.parametrize("boxes, message", [
    ([[1, 2, 3]], "wrong shape"),
    ([[0, 0, np.nan, 10]], "NaN or inf"),
    ([[500, 10, 600, 50]], "no area inside the frame"),
    ([[10, 10, 10, 50]], "no area"),
    ([[30, 10, 20, 50]], "no area"),
])
def test_bad_boxes(boxes, message):
    with pytest.raises(InputError, match=message):
        validate_boxes(boxes, (100, 200, 3))


def test_boxes_partly_outside_are_clipped_and_rounded():
    out = validate_boxes([[-10, -5, 50.4, 60.6], [150, 80, 260, 130]], (100, 200, 3))
    assert out.tolist() == [[0, 0, 50, 61], [150, 80, 200, 100]]
    assert validate_boxes(np.zeros((0, 4)), (100, 200, 3)).shape == (0, 4)


def test_nv12_through_opencv_matches_the_reference():
    """Every byte value in Y, U and V (footroom and headroom included): within 1 grey level."""
    from edgereid.ops.reference import nv12_to_bgr_reference

    rng = np.random.default_rng(0)
    nv12 = rng.integers(0, 256, (480 * 3 // 2, 640), dtype=np.uint8)
    nv12[:16, :256] = np.arange(256, dtype=np.uint8)  # every luma value
    ours = nv12_to_bgr(nv12, 480, 640).astype(int)
    assert np.abs(ours - nv12_to_bgr_reference(nv12, 480, 640).astype(int)).max() <= 1
    for bad in [(nv12, 479, 640), (nv12.astype(np.int16), 480, 640), ("nv12", 480, 640)]:
        with pytest.raises(InputError, match="NV12"):
            nv12_to_bgr(*bad)


def test_training_and_the_runtime_share_one_letterbox_fill(frames):
    """Training normalises stored uint8 crops (bars in the mean rounded to uint8, then flipped and jittered);
    with the crops' placements its bars are exactly zero, and its batches equal the runtime's, mirrored
    ones included (an odd margin puts mirrored content one pixel off)."""
    from edgereid.data.scene_crops import runtime_crops_uint8
    from edgereid.methods.batches import photometric_jitter
    from edgereid.ops.geometry import mirror_placement
    from edgereid.ops.preprocess import normalise_batch

    spec = InputSpec(height=64, width=48, resize="letterbox", mean=(123.675, 116.28, 103.53),
                     std=(58.395, 57.12, 57.375))
    boxes = validate_boxes([[10, 20, 60, 200], [30, 30, 250, 90], [5, 5, 58, 140]], frames[0].shape)
    plan = plan_crops(np.zeros(3, int), boxes, spec)
    assert ((spec.width - plan.placement[:, 2]) % 2).any()  # an odd margin is among the cases
    stored = runtime_crops_uint8(spec, [frames[0]], plan)
    runtime = preprocess_batch([frames[0]], plan, spec)
    np.testing.assert_array_equal(normalise_batch(stored, spec, placement=plan.placement), runtime)
    mirrored = normalise_batch(stored[:, :, ::-1], spec, placement=mirror_placement(plan.placement, spec.width))
    np.testing.assert_array_equal(mirrored, runtime[..., ::-1])
    jittered = normalise_batch(photometric_jitter(stored, np.random.default_rng(0)), spec, placement=plan.placement)
    content = np.zeros(runtime.shape, bool)
    for i, (x, y, w, h) in enumerate(plan.placement):
        content[i, :, y:y + h, x:x + w] = True
    assert (jittered[~content] == 0).all() and (runtime[~content] == 0).all()
    without = normalise_batch(stored, spec)  # the old training policy: the rounded mean, not zero
    assert np.abs(without[~content]).max() > 0
