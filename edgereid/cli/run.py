"""Verbs of the ``edgereid`` command that run the SDK rather than build models: ``demo`` (a multi-camera
synthetic scene through the pipeline), ``doctor`` (versions, providers, what is missing) and ``query``
(text search of a ReID gallery through the AIO teacher's exported text branch). This module owns their
sub-parsers and handlers; handlers import what they run inside the function so that the command starts fast."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Sequence

from edgereid.cli.common import COUNT, SEED, Verbs, add_json_option, add_verbs, ranged_int, write_json


def _cmd_doctor(args: argparse.Namespace) -> int:
    from edgereid.doctor import facts, report

    print(report())
    write_json(args.json, facts())
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from edgereid.bundled import bundled_model
    from edgereid.demo import DemoOptions, run_demo

    def model(given: str | None, task: str) -> str:
        """The model given, the bundled one when none was, nothing for ''."""
        return str(bundled_model(task)) if given is None else given

    options = DemoOptions(reid=model(args.reid, "reid"), keypoints=model(args.keypoints, "keypoints"),
                          face=model(args.face, "face"), out=Path(args.out),
                          seed=args.seed, identities=args.identities, cameras=args.cameras,
                          frames=args.frames, max_batch=args.max_batch, reuse_tracks=args.reuse_tracks)
    summary = run_demo(options)
    print(json.dumps(summary))
    return 0


def _cmd_query(args: argparse.Namespace) -> int:
    from edgereid.methods.aio.query import TextQueryEncoder
    from edgereid.gallery import Gallery

    encoder = TextQueryEncoder(args.text_encoder)
    gallery = Gallery.load(args.gallery)
    encoder.check_gallery_space(gallery.dim, gallery.card)
    names, scores = gallery.search(encoder.encode(args.text), k=args.k)
    for text, row_names, row_scores in zip(args.text, names, scores):
        print(f"{text!r}:")
        for rank, (name, score) in enumerate(zip(row_names, row_scores), 1):
            print(f"  {rank}. {name}  cosine {score:.3f}")
    return 0


def _add_doctor(verbs: Verbs) -> None:
    doctor = verbs.add_parser("doctor", help="versions, providers, GPU; what is missing for which feature")
    add_json_option(doctor, "the versions, providers and GPU found")
    doctor.set_defaults(func=_cmd_doctor)


def _add_demo(verbs: Verbs) -> None:
    demo = verbs.add_parser("demo", help="multi-camera scene from the synthetic world through the pipeline")
    demo.add_argument("--reid", help="ReID ONNX model (default: the one bundled in the package)")
    demo.add_argument("--keypoints", help="keypoint ONNX model (default: bundled; '' to skip)")
    demo.add_argument("--face", help="face ONNX model (default: bundled; '' to skip)")
    demo.add_argument("--out", default="edgereid-demo", help="folder for the video and contact sheet")
    demo.add_argument("--seed", type=SEED, default=1000)
    demo.add_argument("--identities", type=COUNT, default=20)
    demo.add_argument("--cameras", type=COUNT, default=3)
    demo.add_argument("--frames", type=COUNT, default=100, help="frames per camera (10 frames/s)")
    demo.add_argument("--max-batch", type=ranged_int(1, 4096), default=32)
    demo.add_argument("--reuse-tracks", action="store_true", help="submit the world's person ids as track ids (a "
                      "perfect tracker): a person or face is embedded only when its track is new or has changed")
    demo.set_defaults(func=_cmd_demo)


def _add_query(verbs: Verbs) -> None:
    query = verbs.add_parser("query", help="search a ReID gallery with text descriptions (the AIO teacher's "
                             "exported text branch, ONNX Runtime on the CPU)")
    query.add_argument("text", nargs="+", help='e.g. "a person in a red jacket with a backpack"')
    query.add_argument("--text-encoder", required=True,
                       help="folder with text.onnx, tokenizer.json, text_encoder.json (an AIO teacher's run folder)")
    query.add_argument("--gallery", required=True, help="a gallery enrolled with a model in the teacher's space")
    query.add_argument("-k", type=COUNT, default=5, help="identities to list per query")
    query.set_defaults(func=_cmd_query)


# verb -> the function adding its sub-parser, in this group's order
VERBS = {"demo": _add_demo, "doctor": _add_doctor, "query": _add_query}


def register(verbs: Verbs, names: Sequence[str] | None = None) -> None:
    """Add this group's verbs to ``verbs``: all of them, or those named, in the order named."""
    add_verbs(verbs, VERBS, names)
