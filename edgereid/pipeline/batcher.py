"""Groups frames from many cameras into model batches, behind a bounded queue.

A batch is released when the queued crops reach ``max_batch``, when the oldest frame has waited
``max_wait_ms``, or on :meth:`Batcher.flush`. When the queue is full, ``drop_policy`` decides:
``"block"`` makes ``put`` wait for room; ``"drop_oldest"`` discards the oldest queued frame and
counts it. The rules live in :meth:`Batcher.take_ready`, which takes the time as an argument so it
can be tested without sleeping; which frames form the released batch is :func:`take_batch`, the
rule ``Pipeline.process`` follows too.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

from edgereid.errors import ConfigError, PipelineClosedError

DROP_POLICIES = ("block", "drop_oldest")


@dataclass
class WorkItem:
    """One submitted frame: how many crops it brings, when it came, and what to process."""

    sequence: int
    crops: int
    submitted_at: float
    payload: Any = None
    nbytes: int = 0  # what the queued item holds (its frame's pixels), counted against the byte budget


@dataclass
class BatcherStats:
    """Counters: frames submitted, dropped by the queue policy, and batches released."""

    submitted: int = 0
    dropped: int = 0
    batches: int = 0


def take_batch(queue: deque[WorkItem], max_batch: int) -> list[WorkItem]:
    """Pop the next batch off the front of ``queue``: the oldest frame, then the frames after it while their
    crops still fit in ``max_batch`` (a frame with more crops than that goes alone; the model splits it)."""
    batch = [queue.popleft()]
    crops = batch[0].crops
    while queue and crops + queue[0].crops <= max_batch:
        crops += queue[0].crops
        batch.append(queue.popleft())
    return batch


class Batcher:
    """Thread-safe bounded queue with the flush rules of the module docstring."""

    def __init__(self, max_batch: int = 32, max_wait_ms: float = 10.0, capacity: int = 64,
                 drop_policy: str = "block", clock: Callable[[], float] = time.monotonic,
                 capacity_bytes: int | None = None) -> None:
        if drop_policy not in DROP_POLICIES:
            raise ConfigError("unknown drop_policy", expected=str(DROP_POLICIES), got=repr(drop_policy))
        if not (max_batch >= 1 and capacity >= 1 and 0 <= max_wait_ms < float("inf")
                and (capacity_bytes is None or capacity_bytes >= 1)):
            raise ConfigError("batcher limits must be positive and finite",
                              got=f"max_batch={max_batch} capacity={capacity} max_wait_ms={max_wait_ms} "
                                  f"capacity_bytes={capacity_bytes}")
        self.max_batch = max_batch
        self.max_wait_s = max_wait_ms / 1000.0
        self.capacity = capacity
        self.capacity_bytes = capacity_bytes
        self._bytes = 0
        self.drop_policy = drop_policy
        self.clock = clock
        self.stats = BatcherStats()
        self._queue: deque[WorkItem] = deque()
        self._crops = 0
        self._flush = False
        self._closed = False
        self._cond = threading.Condition()

    def __len__(self) -> int:
        return len(self._queue)

    def put(self, item: WorkItem, timeout: float | None = None) -> bool:
        """Queue ``item``; returns False only if ``block`` timed out waiting for room."""
        with self._cond:
            self._refuse_if_closed()
            if self._full(item):
                if self.drop_policy == "drop_oldest":
                    while self._full(item):
                        oldest = self._queue.popleft()
                        self._crops -= oldest.crops
                        self._bytes -= oldest.nbytes
                        self.stats.dropped += 1
                elif not self._cond.wait_for(lambda: not self._full(item) or self._closed, timeout):
                    return False
                self._refuse_if_closed()  # closed while this producer waited: wake it, never hang
            self._queue.append(item)
            self._crops += item.crops
            self._bytes += item.nbytes
            self.stats.submitted += 1
            self._cond.notify_all()
            return True

    def _full(self, item: WorkItem) -> bool:
        """No room for ``item``: the queue holds ``capacity`` items, or ``item`` would take it past
        ``capacity_bytes`` (an item always fits into an empty queue)."""
        if not self._queue:
            return False
        over_bytes = self.capacity_bytes is not None and self._bytes + item.nbytes > self.capacity_bytes
        return len(self._queue) >= self.capacity or over_bytes

    def _refuse_if_closed(self) -> None:
        if self._closed:
            raise PipelineClosedError("the pipeline is closed (or its worker stopped); no more frames are taken",
                                      fix="open a new Pipeline")

    def flush(self) -> None:
        """Release whatever is queued now, without waiting for ``max_batch`` or ``max_wait_ms``."""
        with self._cond:
            self._flush = True
            self._cond.notify_all()

    def close(self) -> None:
        """Stop accepting work; queued items are still released (as a flush)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def take_ready(self, now: float | None = None) -> list[WorkItem] | None:
        """The next batch if the rules release one at time ``now``; otherwise None."""
        with self._cond:
            return self._take_ready_locked(self.clock() if now is None else now)

    def _take_ready_locked(self, now: float) -> list[WorkItem] | None:
        if not self._queue:
            self._flush = False
            return None
        full = self._crops >= self.max_batch
        expired = now - self._queue[0].submitted_at >= self.max_wait_s
        if not (full or expired or self._flush or self._closed):
            return None
        batch = take_batch(self._queue, self.max_batch)
        self._crops -= sum(item.crops for item in batch)
        self._bytes -= sum(item.nbytes for item in batch)
        if not self._queue:
            self._flush = False
        self.stats.batches += 1
        self._cond.notify_all()
        return batch

    def get_batch(self) -> list[WorkItem] | None:
        """Block until a batch is released; None once closed and empty."""
        with self._cond:
            while True:
                batch = self._take_ready_locked(self.clock())
                if batch is not None:
                    return batch
                if self._closed:
                    return None
                timeout = None
                if self._queue:
                    timeout = max(0.0, self._queue[0].submitted_at + self.max_wait_s - self.clock())
                self._cond.wait(timeout)
