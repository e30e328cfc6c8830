"""The pipeline bounds what it holds: boxes per frame, queued bytes, unread results; junk input is a typed
error at submit, never a NumPy exception."""

from __future__ import annotations

import numpy as np
import pytest

from edgereid.errors import InputError
from edgereid.pipeline import Pipeline
from edgereid.pipeline.batcher import Batcher, WorkItem
from edgereid.types import FaceBoxes


@pytest.fixture
def reid(tiny_models):
    return {"reid_model": str(tiny_models["test_reid"]["onnx"])}


def test_too_many_boxes_in_one_frame_are_refused(reid, frames):
    with Pipeline({**reid, "max_boxes_per_frame": 3}) as pipeline:
        with pytest.raises(InputError, match="too many boxes"):
            pipeline.submit(frames[0], [[10, 10, 50, 90]] * 4, "cam", 0.0)
        assert pipeline.process([frames[0]], [[[10, 10, 50, 90]] * 3], "cam")[0].ok


@pytest.mark.parametrize("boxes, message", [
    ((b for b in [[1, 2, 3, 4]]), "not an array"), ("10 10 50 50", "not an array"),
    ([[1, 2, 3, 4], [1, 2, 3]], "ragged"), ([[1 + 2j, 2, 3, 4]], "not real numbers"),
    ([["a", "b", "c", "d"]], "not real numbers"), (np.zeros((2, 0)), "wrong shape"),
])
def test_junk_boxes_are_typed_errors(reid, frames, boxes, message):
    with Pipeline(reid) as pipeline:
        with pytest.raises(InputError, match=message):
            pipeline.submit(frames[0], boxes, "cam", 0.0)
        with pytest.raises(InputError):
            pipeline.submit(frames[0], [], "cam", 0.0, faces=FaceBoxes([[1, 2, 3, 4]], landmarks="abc"))


def test_the_queue_is_bounded_in_bytes():
    """Three 1 MB frames against a 2.5 MB budget with room for 10 items: the third waits (block) or the
    oldest goes (drop_oldest)."""
    blocking = Batcher(max_batch=100, max_wait_ms=10_000, capacity=10, capacity_bytes=2_500_000)
    assert blocking.put(WorkItem(0, 1, 0.0, nbytes=1_000_000)) and blocking.put(WorkItem(1, 1, 0.0, nbytes=1_000_000))
    assert blocking.put(WorkItem(2, 1, 0.0, nbytes=1_000_000), timeout=0.05) is False
    dropping = Batcher(max_batch=100, max_wait_ms=10_000, capacity=10, drop_policy="drop_oldest",
                       capacity_bytes=2_500_000)
    for i in range(3):
        dropping.put(WorkItem(i, 1, 0.0, nbytes=1_000_000))
    assert dropping.stats.dropped == 1 and len(dropping) == 2
    alone = Batcher(capacity_bytes=10)
    assert alone.put(WorkItem(0, 1, 0.0, nbytes=1000))  # an item always fits into an empty queue


def test_unread_results_are_bounded(reid, frames):
    with Pipeline({**reid, "results_size": 2, "max_wait_ms": 1.0}) as pipeline:
        for i in range(5):
            pipeline.submit(frames[0], [[10, 10, 80, 200]], "cam", float(i))
        pipeline.batcher.flush()
        while pipeline.stats["completed"] < 5:
            pipeline.batcher.flush()
        results = list(pipeline.results())
    assert len(results) == 2 and pipeline.stats["results_dropped"] == 3
    assert [r.sequence for r in results] == [3, 4]
