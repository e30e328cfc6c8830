"""Detections in from the ecosystem's objects and formats, results back out as supervision objects; boxes come
back as submitted, tags with them, RGB cameras converted."""

from __future__ import annotations

import numpy as np
import pytest

from edgereid.errors import InputError
from edgereid.pipeline import Pipeline

BOXES = np.array([[10, 10, 80, 200], [-20, 30, 120, 230], [200, 20, 300, 220]], np.float32)


@pytest.fixture(scope="module")
def pipeline(tiny_models):
    config = {"reid_model": str(tiny_models["test_reid"]["onnx"]), "keypoint_model": str(tiny_models["test_keypoints"]["onnx"]),
              "cameras": {"bgr": {}, "rgb": {"color_order": "rgb"}}}
    with Pipeline(config) as opened:
        yield opened


def test_boxes_come_back_as_submitted_with_the_crops_beside_them(pipeline, frames):
    result = pipeline.process([frames[0]], [BOXES], "bgr", tags=[{"frame": 7}])[0]
    np.testing.assert_array_equal(result.persons.boxes, BOXES)
    assert result.persons.crop_boxes[1].tolist() == [0, 30, 120, 230] and result.tag == {"frame": 7}


@pytest.mark.parametrize("box_format, convert", [
    ("xywh", lambda b: np.c_[b[:, :2], b[:, 2:] - b[:, :2]]),
    ("cxcywh", lambda b: np.c_[(b[:, :2] + b[:, 2:]) / 2, b[:, 2:] - b[:, :2]]),
])
def test_box_formats_give_the_same_crops(pipeline, frames, box_format, convert):
    reference = pipeline.process([frames[0]], [BOXES], "bgr")[0]
    other = pipeline.process([frames[0]], [convert(BOXES)], "bgr", box_format=box_format)[0]
    np.testing.assert_allclose(other.persons.embeddings, reference.persons.embeddings, atol=1e-6)
    np.testing.assert_allclose(other.persons.boxes, BOXES, atol=1e-4)
    with pytest.raises(InputError, match="unknown box format"):
        pipeline.process([frames[0]], [BOXES], "bgr", box_format="ltrb")


def test_an_rgb_camera_is_converted(pipeline, frames):
    bgr = pipeline.process([frames[0]], [BOXES], "bgr")[0]
    rgb = pipeline.process([np.ascontiguousarray(frames[0][..., ::-1])], [BOXES], "rgb")[0]
    np.testing.assert_allclose(rgb.persons.embeddings, bgr.persons.embeddings, atol=1e-6)


def test_torch_tensors_are_boxes(pipeline, frames):
    torch = pytest.importorskip("torch")
    reference = pipeline.process([frames[0]], [BOXES], "bgr")[0]
    tensor = pipeline.process([frames[0]], [torch.from_numpy(BOXES)], "bgr")[0]
    np.testing.assert_allclose(tensor.persons.embeddings, reference.persons.embeddings, atol=1e-6)


def test_supervision_in_and_out(pipeline, frames):
    sv = pytest.importorskip("supervision", reason="supervision (the interop extra) is not installed")
    detections = sv.Detections(xyxy=np.r_[BOXES, [[5, 5, 40, 40]]], class_id=np.array([0, 0, 0, 2]),
                               confidence=np.array([0.9, 0.8, 0.7, 0.95]))
    result = pipeline.process([frames[0]], [detections], "bgr")[0]
    np.testing.assert_array_equal(result.persons.boxes, BOXES)  # the class-2 box is not a person
    out = result.to_detections()
    assert isinstance(out, sv.Detections) and len(out) == 3
    np.testing.assert_array_equal(out.xyxy, BOXES)
    np.testing.assert_array_equal(out.data["embedding"], result.persons.embeddings)
    keypoints = result.to_keypoints()
    assert keypoints.xy.shape == result.persons.keypoints.shape


def test_ultralytics_results_are_boxes(pipeline, frames):
    pytest.importorskip("ultralytics", reason="ultralytics needs torchvision, which does not import with the CPU "
                                              "torch here; its objects are duck-typed on .boxes/.xyxy/.cls")
    from ultralytics.engine.results import Boxes

    boxes = Boxes(np.c_[BOXES, np.full(3, 0.9), np.zeros(3)], orig_shape=frames[0].shape[:2])
    result = pipeline.process([frames[0]], [boxes], "bgr")[0]
    np.testing.assert_array_equal(result.persons.boxes, BOXES)
