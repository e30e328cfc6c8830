"""Preprocessing spread over threads and overlapped with inference gives exactly what the serial path gives."""

import threading

import numpy as np
import pytest

from edgereid.card import InputSpec
from edgereid.ops.geometry import plan_crops, validate_boxes
from edgereid.ops.preprocess import preprocess_batch
from edgereid.runtime.backends import load_backend
from edgereid.runtime.host_preprocess import HostPreprocessor
from edgereid.runtime.model import CropModel

REID = "samples/models/reid/model.onnx"


def _plan(frames, spec, count, seed=0, landmarks=False):
    rng = np.random.default_rng(seed)
    index = rng.integers(0, len(frames), count)
    x1, y1 = rng.uniform(0, 150, count), rng.uniform(0, 60, count)
    boxes = np.stack([x1, y1, x1 + rng.uniform(12, 150, count), y1 + rng.uniform(20, 170, count)], 1)
    boxes = np.concatenate([validate_boxes(boxes[i:i + 1], frames[index[i]].shape) for i in range(count)])
    points = None
    if landmarks:
        centre = (boxes[:, None, :2] + boxes[:, None, 2:]) / 2
        points = centre + rng.uniform(-8, 8, (count, 5, 2))
    return plan_crops(index, boxes, spec, points)


@pytest.mark.parametrize("spec", [InputSpec(height=64, width=32), InputSpec(height=48, width=48, resize="letterbox"),
                                  InputSpec(height=32, width=32, layout="NHWC", color_order="BGR"),
                                  InputSpec(height=32, width=32, mean=(127.5,) * 3, std=(128.0,) * 3)],
                         ids=["stretch", "letterbox", "nhwc", "aligned-face"])
def test_threaded_batches_are_bit_identical_to_the_serial_path(frames, spec):
    plan = _plan(frames, spec, 29, landmarks=spec.height == spec.width == 32 and spec.layout == "NCHW")
    serial = preprocess_batch(frames, plan, spec)
    preprocessor = HostPreprocessor(spec, max_batch=32, threads=3)
    try:
        first = preprocessor.start(frames, plan, slot=0)
        second = preprocessor.start(frames, plan.slice(5, 20), slot=1)  # both slots in flight at once
        np.testing.assert_array_equal(first.result(), serial)
        np.testing.assert_array_equal(second.result(), serial[5:20])
    finally:
        preprocessor.close()


def test_a_failing_crop_raises_in_the_caller_and_close_stops_the_workers(frames):
    spec = InputSpec(height=64, width=32)
    plan = _plan(frames, spec, 16)
    bad = plan.slice(0, 16)
    bad.frame_index[3] = 7  # no such frame
    preprocessor = HostPreprocessor(spec, max_batch=16, threads=2)
    with pytest.raises(IndexError):
        preprocessor.start(frames, bad).result()
    preprocessor.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("edgereid-preprocess")]


def test_crop_model_runs_overlapped_halves_with_the_serial_results(frames):
    """40 crops at max_batch 32: the threaded model runs halves of 16 (the second prepared while the first runs)
    and must give what the one-thread model gives with batches of 32 and 8."""
    threaded = CropModel(load_backend(REID), 32, preprocess_threads=2)
    serial = CropModel(load_backend(REID), 32, preprocess_threads=1)
    try:
        plan = _plan(frames, threaded.card.input, 40, seed=3)
        assert [len(c) for c in threaded._chunks(plan)] == [16, 16, 8] and len(serial._chunks(plan)) == 2
        np.testing.assert_allclose(threaded.run(frames, plan).embeddings, serial.run(frames, plan).embeddings,
                                   atol=1e-5)
    finally:
        threaded.close()
        serial.close()
