"""A bad frame is that frame's problem: it fails alone, typed, and the worker, the other frames of its batch
and the other cameras go on. NaN model outputs are flagged per crop and never matched."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from edgereid.errors import FrameError, InputError, PipelineClosedError
from edgereid.gallery import Gallery
from edgereid.pipeline import Pipeline
from edgereid.pipeline.batcher import Batcher, WorkItem
from edgereid.types import FaceBoxes

onnx = pytest.importorskip("onnx", reason="building the test model needs the export extra")


@pytest.fixture(scope="module")
def log_mean_model(tmp_path_factory):
    """A real ONNX ReID model whose 3-d embedding is log(channel means): finite for bright crops, NaN for
    crops darker than the card's mean (the log of a negative number), as a broken model would give."""
    from onnx import TensorProto, helper

    from edgereid.card import write_card
    from edgereid.card_tools import card_for_onnx, parse_output_spec

    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["images"], ["means"], axes=[2, 3], keepdims=0),
         helper.make_node("Log", ["means"], ["embedding"])],
        "log_mean", [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, 32, 16])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", 3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    path = tmp_path_factory.mktemp("nan_model") / "log_mean.onnx"
    onnx.save(model, path)
    card = card_for_onnx(path, task="reid", height=32, width=16, mean=(127.5,) * 3, std=(127.5,) * 3,
                         outputs=[parse_output_spec("embedding:embedding:3")], name="log_mean")
    return write_card(path, card, path)


def _frame() -> np.ndarray:
    """Left half bright (three different channel levels), right half black."""
    frame = np.zeros((120, 160, 3), np.uint8)
    frame[:, :80] = (250, 200, 160)
    return frame


BRIGHT, DARK = [5, 5, 60, 110], [90, 5, 150, 110]


def test_a_nan_embedding_is_flagged_and_never_matched(log_mean_model):
    with Pipeline({"reid_model": str(log_mean_model), "max_batch": 8}) as pipeline:
        gallery = Gallery(pipeline.models["reid_model"].card)
        bright = pipeline.process([_frame()], [[BRIGHT]], "cam")[0]
        gallery.enroll("alice", bright.persons.embeddings[0])
        pipeline.reid_gallery = gallery
        result = pipeline.process([_frame()], [[BRIGHT, DARK, BRIGHT]], "cam")[0]
    persons = result.persons
    assert result.ok and persons.invalid.tolist() == [False, True, False]
    assert persons.identities == ("alice", None, "alice")
    assert np.isnan(persons.scores[1]) and np.isfinite(persons.scores[[0, 2]]).all()
    assert not persons.embeddings[1].any() and np.isfinite(persons.embeddings).all()


def test_degenerate_landmarks_are_refused_at_submit(tiny_models, frames):
    config = {"reid_model": str(tiny_models["test_reid"]["onnx"]), "face_model": str(tiny_models["test_face"]["onnx"])}
    with Pipeline(config) as pipeline:
        faces = FaceBoxes([[20, 20, 60, 60]], landmarks=np.full((1, 5, 2), 40.0))
        with pytest.raises(InputError, match="coincide"):
            pipeline.submit(frames[0], [[10, 10, 80, 200]], "cam", 0.0, faces=faces)


def test_a_face_cut_by_the_frame_edge_keeps_its_landmarks(tiny_models, frames):
    """The face box runs 20 px past the left edge; its landmarks lie inside the box as submitted."""
    config = {"face_model": str(tiny_models["test_face"]["onnx"]), "min_face_size": 4}
    faces = FaceBoxes([[-20, 30, 30, 80]], landmarks=[[[-8, 45], [14, 45], [2, 56], [-6, 67], [12, 67]]])
    with Pipeline(config) as pipeline:
        result = pipeline.process([frames[0]], [np.zeros((0, 4))], "cam", faces=[faces])[0]
    assert result.ok and np.isfinite(result.faces.embeddings).all() and result.faces.embeddings.any()


def test_one_failing_frame_fails_alone_and_the_worker_goes_on(tiny_models, frames, monkeypatch):
    """A failure inside the batch path (injected for camera 'bad': the model raising on its frame) gives that
    frame a FrameError with the cause chained; the other frames' results equal a run without it, and the
    worker keeps serving later submissions."""
    config = {"reid_model": str(tiny_models["test_reid"]["onnx"]), "max_batch": 32, "max_wait_ms": 50.0}
    boxes = [[10, 10, 80, 200], [100, 20, 200, 230]]
    with Pipeline(config) as reference:
        expected = reference.process(frames, [boxes] * 3, "good")
    with Pipeline(config) as pipeline:
        executor = pipeline.executor
        persons = executor._persons

        def failing_for_bad_camera(inputs, *args):
            if any(s.camera_id == "bad" for s in inputs.submissions):
                raise np.linalg.LinAlgError("SVD did not converge")
            return persons(inputs, *args)

        monkeypatch.setattr(executor, "_persons", failing_for_bad_camera)
        for i, camera in enumerate(["good", "bad", "good"]):
            pipeline.submit(frames[i], boxes, camera, float(i))
        first = sorted(pipeline.results(wait=True, timeout=30), key=lambda r: r.sequence)
        pipeline.submit(frames[0], boxes, "good", 3.0)
        later = list(pipeline.results(wait=True, timeout=30))
    assert [r.ok for r in first] == [True, False, True] and len(later) == 1 and later[0].ok
    error = first[1].error
    assert isinstance(error, FrameError) and isinstance(error.__cause__, np.linalg.LinAlgError)
    assert first[1].persons.embeddings is None and len(first[1].persons) == 2
    for got, want in zip([first[0], first[2]], [expected[0], expected[2]]):
        np.testing.assert_allclose(got.persons.embeddings, want.persons.embeddings, atol=1e-6)


def test_a_producer_blocked_on_a_full_queue_is_woken_by_close():
    batcher = Batcher(max_batch=100, max_wait_ms=10_000, capacity=1)
    batcher.put(WorkItem(0, 1, 0.0))
    outcome = []

    def produce():
        try:
            batcher.put(WorkItem(1, 1, 0.0))
        except PipelineClosedError as exc:
            outcome.append(exc)

    producer = threading.Thread(target=produce)
    producer.start()
    producer.join(0.2)
    assert producer.is_alive()  # blocked on the full queue
    batcher.close()
    producer.join(5)
    assert not producer.is_alive() and isinstance(outcome[0], PipelineClosedError)


def test_submit_after_close_is_a_typed_error(tiny_models, frames):
    pipeline = Pipeline({"reid_model": str(tiny_models["test_reid"]["onnx"])})
    pipeline.close()
    with pytest.raises(PipelineClosedError):
        pipeline.submit(frames[0], [[10, 10, 80, 200]], "cam", 0.0)
