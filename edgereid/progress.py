"""Progress on long work: a tqdm bar on a terminal, one line per phase elsewhere, never a crash.

On a terminal (stderr is a TTY) with tqdm installed, :func:`progress` is a tqdm bar. Otherwise (a log file,
CI, a service) a bar's redraws would become thousands of log lines, so each phase prints one line when it
starts and one when it ends, with its count and time. tqdm is not in the runtime install (the ``train``
extra brings it); without it the same plain lines are printed.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from typing import Any, Iterable, Iterator


def available() -> bool:
    """Whether bars are drawn: tqdm importable and stderr a terminal."""
    return importlib.util.find_spec("tqdm") is not None and sys.stderr.isatty()


class PhaseLines:
    """What :func:`progress` returns off a terminal: the iterable passed through, a start and an end line."""

    def __init__(self, iterable: Iterable[Any] | None, desc: str, total: int | None) -> None:
        self.iterable, self.desc, self.total, self.n = iterable, desc or "working", total, 0
        self.started = time.perf_counter()
        size = f" ({total} steps)" if total else ""
        print(f"{self.desc}{size} ...", file=sys.stderr, flush=True)

    def __iter__(self) -> Iterator[Any]:
        for item in self.iterable or ():
            self.n += 1
            yield item
        self.close()

    def refresh(self) -> None:
        """Nothing to redraw off a terminal."""

    def update(self, count: int = 1) -> None:
        self.n += count

    def close(self) -> None:
        if self.started is not None:
            print(f"{self.desc}: done, {self.n} in {time.perf_counter() - self.started:.1f} s", file=sys.stderr,
                  flush=True)
            self.started = None


def progress(iterable: Iterable[Any] | None = None, **options: Any) -> Any:
    """``tqdm(iterable, **options)`` on a terminal; off one, :class:`PhaseLines` (one line at the start and one
    at the end of the phase). Iterate it, or drive it with ``n``/``refresh``/``update``/``close``."""
    if available():
        from tqdm import tqdm

        return tqdm(iterable, **options)
    return PhaseLines(iterable, options.get("desc", ""), options.get("total"))
