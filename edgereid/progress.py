"""Progress bars where ``tqdm`` is installed, and nothing (never a crash) where it is not.

The deployment install does not carry tqdm (the ``train`` extra does), yet engine builds, face rendering
and scene rendering show progress on long work; they all go through :func:`progress`.
"""

from __future__ import annotations

import importlib.util
from typing import Any, Iterable


def available() -> bool:
    """Whether tqdm can be imported."""
    return importlib.util.find_spec("tqdm") is not None


def progress(iterable: Iterable[Any] | None = None, **options: Any) -> Any:
    """``tqdm(iterable, **options)`` when tqdm is installed; otherwise ``iterable`` itself, so the loop runs
    the same without a bar (a bar without an iterable, ``progress(total=N)``, is then None)."""
    if not available():
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, **options)
