"""Track-aware embedding: scripted tracks through the reuse rules, then through the pipeline."""

import numpy as np
import pytest

import edgereid
from edgereid.errors import ConfigError, InputError
from edgereid.gallery import Gallery
from edgereid.pipeline.config import PipelineConfig
from edgereid.pipeline.tracks import EMBED, FROM_MEMORY, TrackMemory, TrackReuse, visible_share

REID = "samples/models/reid/model.onnx"
FACE = "samples/models/face/model.onnx"


def _step(memory, keys, areas, times, share=None, embeddings=None, invalid=None):
    """Plan one batch, 'embed' the rows the plan asks for (row vectors made from the time), fill the rest."""
    areas, times = np.asarray(areas, float), np.asarray(times, float)
    share = np.ones(len(keys)) if share is None else np.asarray(share, float)
    plan = memory.plan(keys, areas, share, times)
    if embeddings is None:
        embeddings = np.zeros((len(keys), 4), np.float32)
        embeddings[:, 0] = 1.0
        embeddings[:, 1] = times
    out = np.where(plan.embed[:, None], embeddings, 0.0).astype(np.float32)
    failed = np.zeros(len(keys), bool) if invalid is None else np.asarray(invalid) & plan.embed
    memory.fill(plan, out, failed, areas, times)
    return plan, out, failed


def test_a_track_is_embedded_when_new_grown_old_or_better_seen():
    memory = TrackMemory(TrackReuse(reembed_growth=0.2, reembed_after_s=5.0, quality_gain=0.25))
    key = ("cam", 7)
    assert _step(memory, [key], [1000], [0.0])[0].embed.all()  # new
    plan, out, _ = _step(memory, [key], [1100], [1.0])  # +10 % area, 1 s: reused from memory
    assert plan.source[0] == FROM_MEMORY and out[0, 1] == 0.0  # the embedding made at t=0
    assert _step(memory, [key], [1250], [2.0])[0].embed.all()  # +25 % since the last embedding
    assert not _step(memory, [key], [1250], [6.9])[0].embed.any()  # 4.9 s since the embedding at t=2
    assert _step(memory, [key], [1250], [7.0])[0].embed.all()  # 5 s
    cut = TrackMemory(TrackReuse(quality_gain=0.25))
    _step(cut, [key], [1000], [0.0], share=[0.5])  # half of the box outside the frame
    assert _step(cut, [key], [1000], [0.5], share=[0.7])[0].embed.all()  # quality x1.4 beats x1.25
    assert not _step(cut, [key], [1000], [1.0], share=[0.8])[0].embed.any()  # x1.14 over the best: reused
    off = TrackMemory(TrackReuse(quality_gain=None))
    _step(off, [key], [1000], [0.0], share=[0.5])
    assert not _step(off, [key], [1000], [0.5], share=[1.0])[0].embed.any()


def test_growth_beyond_the_model_input_is_not_counted():
    memory = TrackMemory(TrackReuse(), saturation_area=128 * 64)
    key = ("cam", 1)
    _step(memory, [key], [6000], [0.0])
    assert _step(memory, [key], [7500], [0.1])[0].embed.all()  # +25 %, still below the input's 8192
    assert not _step(memory, [key], [20000], [0.2])[0].embed.any()  # counted as 8192: +9 %


def test_a_track_twice_in_one_batch_copies_its_first_row_and_untracked_rows_always_run():
    memory = TrackMemory(TrackReuse())
    keys = [("a", 1), None, ("a", 1), ("b", 1)]
    plan, out, _ = _step(memory, keys, [100, 100, 105, 100], [0.0, 0.0, 0.1, 0.0])
    assert list(plan.source) == [EMBED, EMBED, 0, EMBED]  # camera b's track 1 is another track
    np.testing.assert_array_equal(out[2], out[0])
    plan, _, _ = _step(memory, keys, [100, 100, 100, 100], [1.0, 1.0, 1.0, 1.0])
    assert list(plan.source) == [FROM_MEMORY, EMBED, FROM_MEMORY, FROM_MEMORY]


def test_a_failed_embedding_is_not_remembered_and_memory_is_bounded():
    memory = TrackMemory(TrackReuse(forget_after_s=10.0, max_tracks=3))
    key = ("cam", 1)
    _, out, failed = _step(memory, [key], [100], [0.0], invalid=[True])
    assert failed[0] and len(memory) == 0
    assert _step(memory, [key], [100], [0.1])[0].embed.all()  # embedded again, not reused from nothing
    _step(memory, [("cam", i) for i in range(2, 6)], [100] * 4, [1.0] * 4)
    assert len(memory) == 3 and memory.identity(key) is None  # the least recently seen went first
    _step(memory, [("cam", 9)], [100], [12.5])
    assert len(memory) == 1  # the others were unseen for more than 10 s
    memory.forget("cam")
    assert len(memory) == 0


def test_the_aggregate_is_the_normalised_mean_of_the_best_views():
    memory = TrackMemory(TrackReuse(best_k=2, reembed_after_s=0.0))
    key = ("cam", 1)
    for t, (share, vector) in enumerate([(0.2, [1, 0, 0, 0]), (1.0, [0, 1, 0, 0]), (0.9, [0, 0, 1, 0])]):
        _step(memory, [key], [100], [float(t)], share=[share], embeddings=np.array([vector], np.float32))
    known, aggregates = memory.aggregates([key, None, key])
    assert known == [key]
    np.testing.assert_allclose(aggregates[0], np.array([0, 1, 1, 0]) / np.sqrt(2), atol=1e-6)


def test_visible_share_of_boxes_cut_by_the_frame():
    submitted = np.array([[-50, 0, 50, 100], [0, 0, 10, 10]], float)
    clipped = np.array([[0, 0, 50, 100], [0, 0, 10, 10]], float)
    np.testing.assert_allclose(visible_share(submitted, clipped), [0.5, 1.0])


def _walk(frames, steps=6):
    """Two people in one camera: person 1 stands still, person 2's box (below the 128x64 input's area) grows by
    44 % at step 3."""
    boxes = []
    for t in range(steps):
        grown = [100, 30, 130, 90] if t < 3 else [97, 25, 133, 97]
        boxes.append(np.array([[20, 20, 80, 200], grown], float))
    return [frames[0]] * steps, boxes


def test_the_pipeline_embeds_tracks_on_change_and_reports_reuse(frames):
    images, boxes = _walk(frames)
    times = [0.1 * t for t in range(len(images))]
    with edgereid.Pipeline({"reid_model": REID}) as pipeline:
        gallery = Gallery(pipeline.models["reid_model"].card)
        plain = pipeline.process(images[:1], boxes[:1], "cam0")[0]
        gallery.enroll("alice", plain.persons.embeddings[0])
        gallery.enroll("bob", plain.persons.embeddings[1])
        pipeline.reid_gallery = gallery
        results = pipeline.process(images, boxes, "cam0", times, track_ids=[[1, 2]] * len(images))
        reused = np.array([r.persons.reused for r in results])
        assert reused.tolist() == [[False, False], [True, True], [True, True], [True, False], [True, True],
                                   [True, True]]
        assert all(r.persons.track_ids.tolist() == [1, 2] for r in results)
        np.testing.assert_array_equal(results[2].persons.embeddings, results[0].persons.embeddings)
        assert [r.persons.identities for r in results] == [("alice", "bob")] * len(results)
        untracked = pipeline.process(images[:1], boxes[:1], "cam0", [0.7])[0]
        assert untracked.persons.reused is None and untracked.persons.track_ids is None
        pipeline.forget_tracks("cam0")
        again = pipeline.process(images[:1], boxes[:1], "cam0", [0.8], track_ids=[[1, -1]])[0]
        assert again.persons.reused.tolist() == [False, False] and again.persons.track_ids.tolist() == [1, -1]


def test_face_tracks_and_reuse_switched_off(frames):
    images, boxes = _walk(frames, 3)
    faces = [np.array([[30, 25, 62, 57]], float)] * 3
    with edgereid.Pipeline({"reid_model": REID, "face_model": FACE}) as pipeline:
        results = pipeline.process(images, boxes, "cam0", [0.0, 0.1, 0.2], faces=faces,
                                   face_track_ids=[[5]] * 3)
        assert [r.faces.reused.tolist() for r in results] == [[False], [True], [True]]
        assert results[0].persons.reused is None  # persons were not tracked
    with edgereid.Pipeline({"reid_model": REID, "track_reuse": None}) as pipeline:
        results = pipeline.process(images, boxes, "cam0", [0.0, 0.1, 0.2], track_ids=[[1, 2]] * 3)
        assert all(r.persons.reused is None and r.persons.track_ids.tolist() == [1, 2] for r in results)


@pytest.mark.parametrize("ids, message", [([1], "do not match the boxes"), ([1.5, 2], "whole numbers"),
                                          (["a", "b"], "not numbers"), ([np.nan, 1], "whole numbers"),
                                          ([2 ** 60, 1], "too large")])
def test_bad_track_ids_are_refused_at_submit(frames, ids, message):
    with edgereid.Pipeline({"reid_model": REID}) as pipeline:
        with pytest.raises(InputError, match=message):
            pipeline.submit(frames[0], [[20, 20, 80, 200], [100, 30, 170, 220]], "cam0", 0.0, track_ids=ids)


def test_track_reuse_config_is_checked():
    with pytest.raises(ConfigError, match="reembed_growth"):
        PipelineConfig.load({"reid_model": REID, "track_reuse": {"reembed_growth": -1}})
    with pytest.raises(ConfigError, match="unknown key"):
        PipelineConfig.load({"reid_model": REID, "track_reuse": {"regrow": 0.2}})
    assert PipelineConfig.load({"reid_model": REID, "track_reuse": {"best_k": 3}}).track_reuse.best_k == 3
