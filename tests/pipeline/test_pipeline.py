import numpy as np
import pytest

from edgereid.errors import BackendError, ConfigError, InputError
from edgereid.gallery import Gallery
from edgereid.pipeline import Pipeline
from edgereid.runtime.backends import load_backend
from edgereid.types import FaceBoxes

PERSON_BOXES = [np.array([[10, 20, 70, 200], [120, 30, 200, 230], [230, 10, 300, 160]], np.float32),
                np.array([[5, 5, 100, 170]], np.float32),
                np.array([[40, 40, 150, 230], [200, 20, 260, 120]], np.float32)]
FACES = [FaceBoxes([[20, 25, 44, 49]]),
         FaceBoxes([[30, 30, 50, 52], [60, 10, 76, 28]],
                   landmarks=[[[35, 38], [45, 38], [40, 43], [36, 47], [44, 47]],
                              [[64, 16], [72, 16], [68, 20], [65, 24], [71, 24]]]),
         None]


@pytest.fixture
def config(tiny_models):
    return {"reid_model": str(tiny_models["test_reid"]["onnx"]),
            "keypoint_model": str(tiny_models["test_keypoints"]["onnx"]),
            "face_model": str(tiny_models["test_face"]["onnx"]),
            "max_batch": 4, "max_wait_ms": 5.0}


def run_one_by_one(pipeline, frames):
    return [pipeline.process([frames[i]], [PERSON_BOXES[i]], "cam", [float(i)], [FACES[i]])[0]
            for i in range(len(frames))]


def test_a_batch_gives_the_same_results_as_items_one_by_one(config, frames):
    with Pipeline(config) as pipeline:
        batched = pipeline.process(frames, PERSON_BOXES, "cam", [0.0, 1.0, 2.0], FACES)
        single = run_one_by_one(pipeline, frames)
    for a, b in zip(batched, single):
        np.testing.assert_allclose(a.persons.embeddings, b.persons.embeddings, atol=1e-5)
        np.testing.assert_allclose(a.persons.keypoints, b.persons.keypoints, atol=1e-3)
        np.testing.assert_allclose(a.faces.embeddings, b.faces.embeddings, atol=1e-5)
        assert a.persons.keypoints.shape[1:] == (17, 2)
        np.testing.assert_allclose(np.linalg.norm(a.persons.embeddings, axis=1), 1.0, rtol=1e-5)


def test_submit_and_results_match_process_and_count(config, frames):
    with Pipeline(config) as pipeline:
        expected = pipeline.process(frames, PERSON_BOXES, "cam", [0.0, 1.0, 2.0], FACES)
        sequences = [pipeline.submit(frame, PERSON_BOXES[i], "cam", float(i), faces=FACES[i])
                     for i, frame in enumerate(frames)]
        assert sequences == [3, 4, 5]  # one numbering for process() and submit()
        results = sorted(pipeline.results(wait=True, timeout=30), key=lambda r: r.sequence)
        assert pipeline.stats["completed"] == 6 and pipeline.stats["dropped"] == 0
    assert [r.timestamp for r in results] == [0.0, 1.0, 2.0]
    for a, b in zip(results, expected):
        np.testing.assert_allclose(a.persons.embeddings, b.persons.embeddings, atol=1e-5)
        assert a.latency_ms > 0


def test_keypoints_come_back_in_frame_pixels(config, frames):
    with Pipeline(config) as pipeline:
        result = pipeline.process(frames[:1], PERSON_BOXES[:1], "cam")[0]
    boxes = PERSON_BOXES[0]
    kp = result.persons.keypoints
    # letterboxed soft-argmax stays inside the letterboxed region around each box
    margin = 0.5 * (boxes[:, 2:] - boxes[:, :2]).max(axis=1)
    assert np.all(kp[..., 0] >= boxes[:, None, 0] - margin[:, None])
    assert np.all(kp[..., 0] <= boxes[:, None, 2] + margin[:, None])
    assert np.all((result.persons.keypoint_confidence >= 0) & (result.persons.keypoint_confidence <= 1))


def test_gallery_matches_and_unknowns(config, frames):
    with Pipeline(config) as pipeline:
        first = pipeline.process(frames[:1], PERSON_BOXES[:1], "cam")[0]
        gallery = Gallery(pipeline.models["reid_model"].card, threshold=0.999999)
        gallery.enroll("alice", first.persons.embeddings[0])
        pipeline.reid_gallery = gallery
        again = pipeline.process(frames[:1], PERSON_BOXES[:1], "cam")[0]
    assert again.persons.identities[0] == "alice"
    assert again.persons.scores[0] == pytest.approx(1.0, abs=1e-5)
    assert set(again.persons.identities[1:]) <= {None, "alice"}


def test_ir_cameras_use_the_ir_model(config, frames, tiny_models):
    config = {**config, "reid_ir_model": str(tiny_models["test_reid"]["onnx"]),
              "cameras": {"day": {"modality": "rgb"}, "night": {"modality": "ir"}}}
    with Pipeline(config) as pipeline:
        calls = []
        ir_model = pipeline.models["reid_ir_model"]
        original = ir_model.run
        ir_model.run = lambda *a: calls.append(1) or original(*a)
        results = pipeline.process(frames[:2], PERSON_BOXES[:2], ["day", "night"])
        with pytest.raises(InputError, match="unknown camera"):
            pipeline.process(frames[:1], PERSON_BOXES[:1], "garage")
    assert [r.modality for r in results] == ["rgb", "ir"] and calls == [1]


def test_bad_input_fails_in_the_callers_thread(config, frames):
    with Pipeline(config) as pipeline:
        with pytest.raises(InputError, match="wrong dtype"):
            pipeline.submit(frames[0].astype(np.float32), PERSON_BOXES[0], "cam", 0.0)
        with pytest.raises(InputError, match="NaN"):
            pipeline.submit(frames[0], [[0, 0, np.nan, 5]], "cam", 0.0)
        with pytest.raises(InputError, match="landmarks"):
            pipeline.submit(frames[0], PERSON_BOXES[0], "cam", 0.0,
                            faces=FaceBoxes([[1, 1, 20, 20]], landmarks=np.zeros((1, 5, 2)) + np.nan))
        with pytest.raises(InputError, match="face boxes"):
            pipeline.submit(frames[0], PERSON_BOXES[0], "cam", 0.0, faces=np.zeros((2, 6)))
        with pytest.raises(InputError, match="one entry per frame"):
            pipeline.process(frames, PERSON_BOXES[:2], "cam")
        assert pipeline.stats["submitted"] == 0
        empty = pipeline.process(frames[:1], [np.zeros((0, 4))], "cam")[0]
    assert len(empty.persons) == 0 and empty.persons.embeddings.shape == (0, 32)


def test_drop_oldest_under_overload(config, frames):
    config = {**config, "queue_size": 2, "drop_policy": "drop_oldest", "max_wait_ms": 10_000.0,
              "max_batch": 4096}
    with Pipeline(config) as pipeline:
        for i in range(6):
            pipeline.submit(frames[0], PERSON_BOXES[0], "cam", float(i))
        results = list(pipeline.results(wait=True, timeout=30))
        stats = pipeline.stats
    assert stats["dropped"] == 4 and len(results) == 2
    assert sorted(r.timestamp for r in results) == [4.0, 5.0]


def test_a_timed_out_submit_does_not_hang_results(config, frames):
    config = {**config, "queue_size": 1, "max_wait_ms": 10_000.0, "max_batch": 4096}
    with Pipeline(config) as pipeline:
        pipeline.batcher.put = lambda item, timeout=None: False  # a queue that never has room
        with pytest.raises(TimeoutError):
            pipeline.submit(frames[0], PERSON_BOXES[0], "cam", 0.0, timeout=0.01)
        assert list(pipeline.results(wait=True, timeout=5)) == []


def test_queued_frames_are_copied(config, frames):
    with Pipeline({**config, "max_wait_ms": 10_000.0, "max_batch": 4096}) as pipeline:
        expected = pipeline.process(frames[:1], PERSON_BOXES[:1], "cam")[0]
        reused = frames[0].copy()
        pipeline.submit(reused, PERSON_BOXES[0], "cam", 0.0)
        reused[:] = 0  # a decoder overwriting its buffer before the batch runs
        result = list(pipeline.results(wait=True, timeout=30))[0]
    np.testing.assert_allclose(result.persons.embeddings, expected.persons.embeddings, atol=1e-5)


def test_model_roles_and_providers_are_checked(tiny_models):
    with pytest.raises(ConfigError, match="reid_model is a 'face' model"):
        Pipeline({"reid_model": str(tiny_models["test_face"]["onnx"])})
    with pytest.raises(BackendError, match="not available"):
        load_backend(tiny_models["test_reid"]["onnx"], providers=["CUDAExecutionProvider"])
    with pytest.raises(ConfigError, match="no reid_ir_model"):
        Pipeline({"reid_model": str(tiny_models["test_reid"]["onnx"]), "cameras": {"n": {"modality": "ir"}}})
    with pytest.raises(BackendError, match="no backend for '.plan'"):
        load_backend("model.plan")
    with pytest.raises(BackendError, match="engine not found"):
        load_backend("model.engine")


def test_bad_faces_are_errors_or_flagged_skips(config, frames, tiny_models, tmp_path):
    from edgereid.card import read_card
    from edgereid.errors import GalleryError

    with Pipeline(config) as pipeline:
        with pytest.raises(InputError, match="no area"):
            pipeline.process(frames[:1], [np.zeros((0, 4))], "cam", faces=[FaceBoxes([[20, 20, 20, 30]])])
        far_off = np.array([[[35, 38], [45, 38], [40, 43], [36, 47], [44, 47]]]) + 100.0
        with pytest.raises(InputError, match=r"landmarks \[0\] lie outside their face boxes"):
            pipeline.process(frames[:1], [np.zeros((0, 4))], "cam",
                             faces=[FaceBoxes([[30, 30, 50, 52]], landmarks=far_off)])
        gallery = Gallery(pipeline.models["face_model"].card)
        gallery.enroll("alice", np.ones((1, 32), np.float32))
        pipeline.face_gallery = gallery
        result = pipeline.process(frames[:1], [np.zeros((0, 4))], "cam",
                                  faces=[FaceBoxes([[20, 20, 21, 21], [20, 25, 44, 49]])])[0].faces
    assert result.too_small.tolist() == [True, False]
    assert result.identities[0] is None and np.isnan(result.scores[0]) and not result.embeddings[0].any()
    assert np.isfinite(result.scores[1]) and abs(np.linalg.norm(result.embeddings[1]) - 1) < 1e-4
    other = read_card(tiny_models["test_reid"]["onnx"]).replace(task="face")
    with pytest.raises(GalleryError, match="re-enroll"):
        Pipeline(config, face_gallery=Gallery(other))
    with Pipeline(config) as pipeline, pytest.raises(GalleryError, match="re-enroll"):
        pipeline.face_gallery = Gallery(other)  # assigning later is checked too
    path = Gallery(other).save(tmp_path / "other.npz")
    with pytest.raises(GalleryError, match="cannot be compared"):
        Pipeline({**config, "face_gallery": str(path)})


def test_without_a_gallery_the_score_is_nan_and_close_releases_every_model(config, frames):
    pipeline = Pipeline(config)
    result = pipeline.process(frames[:1], PERSON_BOXES[:1], "cam", faces=FACES[:1])[0]
    assert result.persons.identities == (None, None, None) and np.isnan(result.persons.scores).all()
    assert result.faces.identities == (None,) and np.isnan(result.faces.scores).all()
    pipeline.close()
    pipeline.close()
    assert all(model.backend.closed for model in pipeline.models.values())
    with pytest.raises(BackendError, match="closed"):
        pipeline.process(frames[:1], PERSON_BOXES[:1], "cam")


def test_process_releases_batches_by_the_batchers_rule(config, frames, monkeypatch):
    """max_batch 4 crops: frame 0 brings 4 (3 persons + 1 face), frame 1 brings 3, frame 2 brings 2: the rule
    gives [0], [1], [2] (3 + 2 > 4); the batch executor sees exactly those."""
    with Pipeline(config) as pipeline:
        seen = []
        run = pipeline.executor.run
        monkeypatch.setattr(pipeline.executor, "run",
                            lambda work, *galleries: seen.append([w.sequence for w in work]) or run(work, *galleries))
        results = pipeline.process(frames, PERSON_BOXES, "cam", faces=FACES)
    assert seen == [[0], [1], [2]] and [r.sequence for r in results] == [0, 1, 2]
