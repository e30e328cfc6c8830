"""What the verb groups of the ``edgereid`` command share: the type of the ``verbs`` sub-parsers object
each group's ``register`` adds its parsers to, and :func:`existing_model`, the model-path check of the
verbs that take a model file. Helpers used by one group only stay in that group's module."""

from __future__ import annotations

import argparse
import json
import math
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


def ranged_int(low: int, high: int) -> Callable[[str], int]:
    """An argparse ``type``: a whole number in ``[low, high]`` (a bad value exits 2 with the range)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text[:40]!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected {low} to {high}, got {value}")
        return value

    parse.__name__ = "int"
    return parse


def ranged_float(low: float, high: float, *, low_open: bool = False) -> Callable[[str], float]:
    """An argparse ``type``: a finite number in ``[low, high]`` (``(low, high]`` with ``low_open``)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text[:40]!r}") from None
        if not (math.isfinite(value) and (low < value if low_open else low <= value) and value <= high):
            raise argparse.ArgumentTypeError(f"expected a number in {'(' if low_open else '['}{low}, {high}], "
                                             f"got {text[:40]}")
        return value

    parse.__name__ = "float"
    return parse


def int_list(low: int, high: int) -> Callable[[str], list[int]]:
    """An argparse ``type``: comma-separated whole numbers, each in ``[low, high]`` (e.g. ``1,8,32``)."""
    one = ranged_int(low, high)

    def parse(text: str) -> list[int]:
        return [one(part) for part in text.split(",")]

    parse.__name__ = "list"
    return parse


SEED = ranged_int(0, 2**63 - 1)
COUNT = ranged_int(1, 10_000_000)
FINITE = ranged_float(-1e12, 1e12)


def add_json_option(parser: argparse.ArgumentParser, what: str) -> None:
    """``--json FILE``: the verb's result as JSON in FILE (``-`` for standard output)."""
    parser.add_argument("--json", metavar="FILE", help=f"write {what} as JSON to FILE ('-': standard output)")


def write_json(target: str | None, payload: object) -> None:
    """Write ``payload`` where ``--json`` asked (atomically for a file), or nothing without the flag."""
    if target is None:
        return
    text = json.dumps(payload, indent=2, default=str)
    if target == "-":
        print(text)
    else:
        from edgereid.fileio import atomic_write_text

        atomic_write_text(target, text + "\n")


def add_model_argument(parser: argparse.ArgumentParser, what: str) -> None:
    """The model of a single-model verb: ``--model FILE``, or (the old form) as the first positional."""
    parser.add_argument("model_positional", nargs="?", metavar="MODEL", help=f"{what} (or --model)")
    parser.add_argument("--model", dest="model_option", metavar="FILE", help=what)


def model_argument(args: argparse.Namespace) -> str:
    """The model given by :func:`add_model_argument`'s flag or positional (exactly one of them)."""
    given = [m for m in (args.model_option, args.model_positional) if m]
    if len(given) != 1:
        from edgereid.errors import EdgeReidError

        raise EdgeReidError("give the model once", expected="--model FILE (or FILE)", got=f"{len(given)} models",
                            fix="e.g. edgereid inspect --model samples/models/reid/model.onnx")
    return given[0]
