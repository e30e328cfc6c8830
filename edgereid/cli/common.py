"""What the verb groups of the ``edgereid`` command share: the type of the ``verbs`` sub-parsers object
each group's ``register`` adds its parsers to, and :func:`existing_model`, the model-path check of the
verbs that take a model file. Helpers used by one group only stay in that group's module."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable, Mapping, Sequence, TypeAlias

from edgereid.errors import EdgeReidError

# the object `parser.add_subparsers()` returns; each group adds its verbs to it
Verbs: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def existing_model(name: str) -> Path:
    """``name`` as a path, or an error when no such file exists."""
    path = Path(name)
    if not path.is_file():
        raise EdgeReidError(f"model file not found: {path}", fix="check the path")
    return path


def add_verbs(verbs: Verbs, builders: Mapping[str, Callable[[Verbs], None]],
              names: Sequence[str] | None = None) -> None:
    """Run a group's parser builders on ``verbs``: all of them in the group's order, or those named."""
    for name in names if names is not None else builders:
        builders[name](verbs)
