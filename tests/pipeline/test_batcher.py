import threading

import pytest

from edgereid.errors import ConfigError, PipelineClosedError
from edgereid.pipeline.batcher import Batcher, WorkItem


def item(seq: int, crops: int, at: float = 0.0) -> WorkItem:
    return WorkItem(seq, crops, at)


def test_flushes_when_crops_reach_max_batch():
    batcher = Batcher(max_batch=8, max_wait_ms=1000, capacity=10)
    batcher.put(item(0, 3))
    batcher.put(item(1, 4))
    assert batcher.take_ready(now=0.0) is None  # 7 crops < 8, nothing expired
    batcher.put(item(2, 3))
    batch = batcher.take_ready(now=0.0)
    assert [w.sequence for w in batch] == [0, 1]  # 3 + 4; adding 3 more would exceed 8
    assert batcher.take_ready(now=0.0) is None and len(batcher) == 1


def test_flushes_when_the_oldest_frame_waited_max_wait():
    batcher = Batcher(max_batch=32, max_wait_ms=20, capacity=10)
    batcher.put(item(0, 1, at=1.000))
    batcher.put(item(1, 1, at=1.015))
    assert batcher.take_ready(now=1.019) is None
    assert [w.sequence for w in batcher.take_ready(now=1.020)] == [0, 1]
    assert batcher.stats.batches == 1


def test_explicit_flush_and_oversized_frames():
    batcher = Batcher(max_batch=4, max_wait_ms=1000, capacity=10)
    batcher.put(item(0, 9))  # more crops than a batch: released alone, the model chunks it
    assert [w.sequence for w in batcher.take_ready(now=0.0)] == [0]
    batcher.put(item(1, 1))
    batcher.flush()
    assert [w.sequence for w in batcher.take_ready(now=0.0)] == [1]
    batcher.put(item(2, 1))
    assert batcher.take_ready(now=0.0) is None  # the flush was used up


def test_drop_oldest_discards_and_counts():
    batcher = Batcher(max_batch=100, max_wait_ms=1000, capacity=2, drop_policy="drop_oldest")
    for seq in range(5):
        assert batcher.put(item(seq, 1))
    assert batcher.stats.dropped == 3
    batcher.flush()
    assert [w.sequence for w in batcher.take_ready(now=0.0)] == [3, 4]
    assert batcher.stats.submitted == 5


def test_block_waits_for_room_then_times_out():
    batcher = Batcher(max_batch=100, max_wait_ms=1000, capacity=1, drop_policy="block")
    assert batcher.put(item(0, 1))
    assert batcher.put(item(1, 1), timeout=0.05) is False
    released = threading.Timer(0.05, lambda: (batcher.flush(), batcher.take_ready()))
    released.start()
    assert batcher.put(item(2, 1), timeout=5.0)
    released.join()
    assert batcher.stats.dropped == 0


def test_get_batch_returns_none_once_closed_and_drained():
    batcher = Batcher(max_batch=100, max_wait_ms=10_000, capacity=4)
    batcher.put(item(0, 1))
    batcher.close()
    assert [w.sequence for w in batcher.get_batch()] == [0]
    assert batcher.get_batch() is None
    with pytest.raises(PipelineClosedError, match="closed"):
        batcher.put(item(1, 1))


def test_bad_limits():
    with pytest.raises(ConfigError):
        Batcher(drop_policy="newest")
    with pytest.raises(ConfigError):
        Batcher(max_batch=0)
