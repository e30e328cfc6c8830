"""Property tests (hypothesis): frames, boxes, landmarks, cards and configs drawn at random go through
submit/process, the card and the config loader. Only typed errors or correct results come out, and a frame
never changes another frame's result."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from edgereid.card import ModelCard, read_card
from edgereid.errors import ConfigError, EdgeReidError, ModelCardError
from edgereid.pipeline import Pipeline, PipelineConfig
from edgereid.types import FaceBoxes

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                       HealthCheck.too_slow])
numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=32), st.integers(-10**6, 10**6))
box_rows = st.lists(st.lists(numbers, min_size=0, max_size=6), min_size=0, max_size=6)
frames = st.one_of(
    hnp.arrays(np.uint8, hnp.array_shapes(min_dims=2, max_dims=4, min_side=0, max_side=40)),
    hnp.arrays(st.sampled_from([np.float32, np.int16, np.uint8]), st.tuples(st.integers(1, 60), st.integers(1, 60),
                                                                             st.integers(1, 4))),
    st.none(), st.text(max_size=5), st.lists(st.integers(0, 255), max_size=5))


@pytest.fixture(scope="module")
def pipeline(tiny_models):
    config = {"reid_model": str(tiny_models["test_reid"]["onnx"]), "face_model": str(tiny_models["test_face"]["onnx"]),
              "keypoint_model": str(tiny_models["test_keypoints"]["onnx"]), "max_batch": 8, "min_face_size": 2}
    with Pipeline(config) as opened:
        yield opened


def _check_result(result, frame_boxes: int) -> None:
    assert result.ok and len(result.persons) == frame_boxes
    assert np.isfinite(result.persons.embeddings).all()
    assert np.allclose(np.linalg.norm(result.persons.embeddings, axis=1)[~result.persons.invalid], 1.0, atol=1e-4)


@FUZZ
@given(frame=frames, boxes=st.one_of(box_rows, st.none(), st.text(max_size=8)))
def test_any_frame_and_boxes_give_a_typed_error_or_a_correct_result(pipeline, frame, boxes):
    try:
        result = pipeline.process([frame], [boxes], "cam")[0]
    except EdgeReidError:
        return
    _check_result(result, len(result.persons.boxes))


@FUZZ
@given(boxes=st.lists(st.tuples(st.floats(-50, 400), st.floats(-50, 300), st.floats(0.5, 300), st.floats(0.5, 300)),
                      min_size=1, max_size=5),
       landmarks=st.one_of(st.none(), hnp.arrays(np.float64, (1, 5, 2), elements=st.floats(-100, 400))))
def test_a_frame_never_changes_another_frames_result(pipeline, frames_fixture, boxes, landmarks):
    """A good frame's embeddings are the same alone and in a batch with a random (valid) frame."""
    good_frame, other_frame = frames_fixture[0], frames_fixture[1]
    good_boxes = [[10, 10, 80, 200], [100, 20, 200, 230]]
    alone = pipeline.process([good_frame], [good_boxes], "cam")[0]
    other_boxes = [[x, y, x + w, y + h] for x, y, w, h in boxes]
    faces = FaceBoxes([other_boxes[0]], landmarks) if landmarks is not None else None
    try:
        together = pipeline.process([good_frame, other_frame], [good_boxes, other_boxes], "cam", faces=[None, faces])
    except EdgeReidError:
        return  # refused at submit, typed: nothing ran
    np.testing.assert_allclose(together[0].persons.embeddings, alone.persons.embeddings, atol=1e-5)
    np.testing.assert_allclose(together[0].persons.keypoints, alone.persons.keypoints, atol=1e-3)
    _check_result(together[1], len(other_boxes))


@pytest.fixture(scope="module")
def frames_fixture():
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (240, 320, 3), dtype=np.uint8) for _ in range(2)]


json_values = st.recursive(st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=8)),
                           lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                   st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                           max_leaves=20)


@FUZZ
@given(changes=st.dictionaries(st.sampled_from(["name", "task", "input", "outputs", "embedding_dim", "schema_version",
                                                "readout", "joint_names", "threshold"]), json_values, max_size=4))
def test_any_card_json_is_a_card_or_a_card_error(changes):
    base = json.loads(read_card("samples/models/keypoints/model.onnx").to_json())
    try:
        card = ModelCard.from_json(json.dumps({**base, **changes}))
    except ModelCardError:
        return
    assert 0 < card.input.height <= 4096 and math.isfinite(sum(card.input.mean))


@FUZZ
@given(values=st.dictionaries(st.sampled_from(["max_batch", "max_wait_ms", "queue_size", "threads", "min_face_size",
                                               "drop_policy", "cameras", "queue_megabytes", "max_boxes_per_frame",
                                               "providers", "results_size"]), json_values, max_size=4))
def test_any_pipeline_config_is_valid_or_a_config_error(values):
    try:
        config = PipelineConfig.load({"reid_model": "m.onnx", **values})
    except ConfigError:
        return
    assert 1 <= config.max_batch <= 4096 and math.isfinite(config.max_wait_ms) and config.max_wait_ms >= 0
    assert all(isinstance(camera, str) for camera in config.cameras)
