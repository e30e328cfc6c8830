"""Evaluation verbs of the ``edgereid`` command: ``evaluate faces|reid|crossmodal|keypoints`` (benchmarks on
held-out data, written as reports) and ``calibrate`` (an accept threshold stored in the card). This module owns their sub-parsers, their handlers and the
``--model LABEL=PATH`` parsing of the benchmarks; handlers import :mod:`edgereid.eval` and the runtime
inside the function so that the command starts fast."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from edgereid.cli.common import (COUNT, SEED, Verbs, add_json_option, add_verbs, existing_model,
                                 ranged_float, write_json)
from edgereid.errors import EdgeReidError


def _labelled_models(pairs: list[str], example: str) -> dict[str, Path]:
    """``--model LABEL=PATH`` options of the benchmarks as {label: existing path}."""
    models = {}
    for pair in pairs:
        label, sep, path = pair.rpartition("=")
        if not sep or not label:
            raise EdgeReidError(f"bad --model '{pair}'", expected=f"LABEL=PATH ({example})")
        models[label] = existing_model(path)
    return models


def _publish(report: dict, table: Callable[[dict], str], write_report: Callable[..., Any], out: str,
             json_target: str | None) -> int:
    """A benchmark's ending: the markdown table printed, the report files written (and named), --json."""
    print(table(report))
    written = write_report(report, out)
    print("wrote " + ", ".join(str(p) for p in (written.values() if isinstance(written, dict) else [written])))
    write_json(json_target, report)
    return 0


def _cmd_evaluate_faces(args: argparse.Namespace) -> int:
    from edgereid.eval.face_lowres import LowResProtocol, evaluate, markdown_table, write_report

    models = _labelled_models(args.model, "e.g. ccface=runs/faces/ccface_student/model.onnx")
    if args.verification or args.tinyface or args.scface:
        from edgereid.data.scface import SCFACE_TEST_SUBJECTS
        from edgereid.eval.face_benchmarks import benchmark_table, evaluate_benchmarks, write_benchmark_report

        subjects = SCFACE_TEST_SUBJECTS if args.scface_subjects == "51-130" else None
        report = evaluate_benchmarks(models, args.verification or [], args.tinyface, args.scface, subjects,
                                     threads=args.threads)
        return _publish(report, benchmark_table, write_benchmark_report, args.out, args.json)
    protocol = LowResProtocol(seed=args.seed, identities=args.identities,
                              probes_per_identity=args.probes, sizes=tuple(args.sizes), far=args.far)
    return _publish(evaluate(models, protocol, threads=args.threads), markdown_table, write_report, args.out, args.json)


def _cmd_evaluate_reid(args: argparse.Namespace) -> int:
    from edgereid.eval.reid_dg import evaluate, evaluate_dataset, markdown_table, write_report

    models = _labelled_models(args.model, "e.g. dcac=runs/dcac/teacher/model.onnx")
    if args.dataset:
        report = evaluate_dataset(models, args.dataset)
    else:
        report = evaluate(models, seed=args.seed, identities=args.identities, cameras=args.cameras, frames=args.frames)
    out = args.out or ("runs/evaluate/reid_target.json" if args.dataset else "runs/evaluate/reid_dg.json")
    return _publish(report, markdown_table, write_report, out, args.json)


def _cmd_evaluate_crossmodal(args: argparse.Namespace) -> int:
    from edgereid.data.synthetic import WorldSpec
    from edgereid.eval.reid_crossmodal import evaluate, markdown_table, student_system, teacher_system, write_report

    systems = {label: teacher_system(path) for label, path in
               _labelled_models(args.teacher, "e.g. aio=runs/aio/teacher/model.safetensors").items()}
    for pair in args.student:
        label, sep, paths = pair.rpartition("=")
        files = paths.split(",")
        if not sep or not label or len(files) > 2 or args.branches is None:
            raise EdgeReidError(f"bad --student '{pair}'", expected="LABEL=RGB.onnx[,IR.onnx] and --branches DIR "
                                "(the AIO teacher's run folder with sketch.onnx and text.onnx)")
        systems[label] = student_system(existing_model(files[0]),
                                        existing_model(files[1]) if len(files) == 2 else None, args.branches)
    if not systems:
        raise EdgeReidError("nothing to evaluate", fix="give --teacher and/or --student")
    world = WorldSpec(seed=args.seed, identities=args.identities, cameras=args.cameras, frames_per_camera=args.frames)
    return _publish(evaluate(systems, world, args.sheet), markdown_table, write_report, args.out, args.json)


def _cmd_evaluate_keypoints(args: argparse.Namespace) -> int:
    from edgereid.eval.keypoints_unsup import evaluate, markdown_table, write_report

    models = _labelled_models(args.model, "a keypoint ONNX or a StableKeypoints teacher.safetensors")
    if args.dataset:
        from edgereid.eval.keypoint_benchmarks import dataset_table, evaluate_dataset, write_dataset_report

        if not args.root:
            raise EdgeReidError("--dataset needs --root", fix="pass the dataset's folder with --root DIR")
        report = evaluate_dataset(models, args.dataset, args.root, fit_limit=args.fit_limit or 2000,
                                  test_limit=args.test_limit, tta_views=args.tta)
        return _publish(report, dataset_table, write_dataset_report, args.out, args.json)
    if not (args.fit and args.test):
        raise EdgeReidError("give --fit and --test crop folders, or --dataset with --root",
                            expected="--fit DIR --test DIR (labelled person crops) or --dataset celeba --root DIR")
    report = evaluate(models, args.fit, args.test, fit_limit=args.fit_limit or 400, test_limit=args.test_limit or 500,
                      alpha=args.alpha, tta_views=args.tta, sheets=args.out)
    return _publish(report, markdown_table, write_report, args.out, args.json)


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from edgereid.eval.calibrate import calibrate, plot_calibration, write_threshold

    model = existing_model(args.model)
    source = f"labelled folder {args.data}" if args.data else f"world seed {args.seed}"
    print(f"calibrating {model} on {source} ...", file=sys.stderr)
    result = calibrate(model, far=args.far, seed=args.seed, identities=args.identities, frames=args.frames,
                       folder=args.data)
    print(f"{model}: accept score > {result.threshold.score:.4f} at FAR {args.far:g} "
          f"(TAR {result.tar:.3f}; {result.genuine_pairs} genuine / {result.impostor_pairs} impostor pairs, {source})")
    written = None
    if not args.dry_run:
        out = None if args.in_place else Path(args.out or model.with_name(f"{model.stem}.calibrated.onnx"))
        written = write_threshold(model, result, out)
        print(f"threshold written into the card of {written}")
    if args.plot:
        print(f"plot: {plot_calibration(result, args.plot, f'{model.name} at FAR {args.far:g}')}")
    write_json(args.json, {"model": str(model), "far": args.far, "threshold": result.threshold.score, "tar": result.tar,
                           "genuine_pairs": result.genuine_pairs, "impostor_pairs": result.impostor_pairs,
                           "data": source, "written": str(written) if written else None})
    return 0


def _add_evaluate(verbs: Verbs) -> None:
    evaluate = verbs.add_parser("evaluate", help="benchmarks on held-out synthetic data")
    benchmarks = evaluate.add_subparsers(dest="benchmark", required=True)
    faces = benchmarks.add_parser("faces", help="low-resolution faces: HR gallery, probes at 12-32 px, "
                                                "TAR@FAR and top-1 per size, with the raw-pixel baseline; or the "
                                                "public benchmarks (--verification, --tinyface, --scface)")
    faces.add_argument("--model", action="append", required=True, metavar="LABEL=PATH",
                       help="a face ONNX model with a card (repeatable)")
    faces.add_argument("--out", default="runs/evaluate/faces", help="folder for the JSON, markdown table and plots "
                       "(default: runs/evaluate/faces)")
    faces.add_argument("--seed", type=SEED, default=700, help="held-out world seed (not a training seed)")
    faces.add_argument("--identities", type=COUNT, default=100)
    faces.add_argument("--probes", type=COUNT, default=5, help="probe pictures per identity")
    faces.add_argument("--sizes", type=COUNT, nargs="+", default=[12, 16, 24, 32], help="probe face sizes (px)")
    faces.add_argument("--far", type=ranged_float(0.0, 1.0, low_open=True), default=1e-3)
    faces.add_argument("--verification", action="append", metavar="FILE.bin",
                       help="an insightface verification set (lfw.bin, cfp_fp.bin, agedb_30.bin, ...; repeatable): "
                            "10-fold accuracy, mirrored images added; replaces the synthetic protocol")
    faces.add_argument("--tinyface", metavar="DIR", help="TinyFace's folder (Testing_Set inside): rank-1/5/20, mAP")
    faces.add_argument("--scface", metavar="DIR", help="SCface_database: rank-1/5 per distance, mugshot gallery")
    faces.add_argument("--scface-subjects", choices=["all", "51-130"], default="all",
                       help="SCface subjects to test on: all 130, or 51-130 when 1-50 were used for fine-tuning")
    faces.add_argument("--threads", type=COUNT, default=2)
    add_json_option(faces, "the report")
    faces.set_defaults(func=_cmd_evaluate_faces)

    reid_eval = benchmarks.add_parser("reid", help="person ReID on an unseen world (new identities and camera "
                                      "domains): mAP and rank-1 through the pipeline")
    reid_eval.add_argument("--model", action="append", required=True, metavar="LABEL=PATH",
                           help="a ReID ONNX model with a card (repeatable)")
    reid_eval.add_argument("--dataset", help="score on the query/gallery of this Market-1501-layout folder (a real "
                           "target domain) instead of the synthetic world")
    _add_world_arguments(reid_eval, seed=720, cameras="cameras of the world")
    reid_eval.add_argument("--out", help="JSON report (default: runs/evaluate/reid_dg.json for the world, "
                           "runs/evaluate/reid_target.json for --dataset)")
    add_json_option(reid_eval, "the report")
    reid_eval.set_defaults(func=_cmd_evaluate_reid)

    cross = benchmarks.add_parser("crossmodal", help="IR->RGB, sketch->RGB, text->RGB and RGB+text->RGB "
                                  "retrieval on an unseen world (AIO teacher and its students)")
    cross.add_argument("--teacher", action="append", default=[], metavar="LABEL=PATH",
                       help="an AIO teacher model.safetensors (every query kind through it; repeatable)")
    cross.add_argument("--student", action="append", default=[], metavar="LABEL=RGB.onnx[,IR.onnx]",
                       help="student ONNX models (repeatable); text and sketch queries use --branches")
    cross.add_argument("--branches", help="the AIO teacher's run folder (sketch.onnx, text.onnx, tokenizer)")
    _add_world_arguments(cross, seed=730, cameras="the last camera records IR (needs >= 4)")
    cross.add_argument("--out", default="runs/evaluate/crossmodal.json",
                       help="JSON report (default: runs/evaluate/crossmodal.json)")
    cross.add_argument("--sheet", help="PNG: text and IR queries of the first model with their top-5 gallery crops")
    add_json_option(cross, "the report")
    cross.set_defaults(func=_cmd_evaluate_crossmodal)

    kp_eval = benchmarks.add_parser("keypoints", help="unsupervised keypoints read out linearly to labelled "
                                    "joints: PCK and NME against the mean-pose baseline, on labelled crop folders "
                                    "or on the paper's datasets (--dataset)")
    kp_eval.add_argument("--model", action="append", required=True, metavar="LABEL=PATH",
                         help="keypoint ONNX or teacher.safetensors (repeatable)")
    kp_eval.add_argument("--fit", help="labelled crop folder the read-outs are fitted on")
    kp_eval.add_argument("--test", help="held-out labelled crop folder")
    kp_eval.add_argument("--dataset", choices=["celeba", "deepfashion", "taichi", "human36m"],
                         help="the paper's protocol on a dataset in its released layout (with --root): read-out "
                              "fitted on its training split, scored on its test split with its own metric")
    kp_eval.add_argument("--root", help="the dataset's folder (with --dataset)")
    kp_eval.add_argument("--fit-limit", type=COUNT, help="images to fit on (default 400 crops; 2000 with --dataset)")
    kp_eval.add_argument("--test-limit", type=COUNT, help="images to score (default 500 crops; all with --dataset)")
    kp_eval.add_argument("--alpha", type=ranged_float(0.0, 1.0, low_open=True), default=0.1, help="PCK threshold, fraction of the crop's larger side")
    kp_eval.add_argument("--tta", type=COUNT, help="teacher test-time augmentation views (default: the teacher's)")
    kp_eval.add_argument("--out", default="runs/evaluate/keypoints",
                         help="folder for the JSON and markdown table (default: runs/evaluate/keypoints)")
    add_json_option(kp_eval, "the report")
    kp_eval.set_defaults(func=_cmd_evaluate_keypoints)


def _add_world_arguments(parser: argparse.ArgumentParser, seed: int, cameras: str | None) -> None:
    """The held-out synthetic world a benchmark renders: its seed, identities, (cameras) and frames per camera."""
    parser.add_argument("--seed", type=SEED, default=seed, help="held-out world seed (not a training seed)")
    parser.add_argument("--identities", type=COUNT, default=60)
    if cameras:
        parser.add_argument("--cameras", type=COUNT, default=4, help=cameras)
    parser.add_argument("--frames", type=COUNT, default=60, help="frames per camera")


def _add_calibrate(verbs: Verbs) -> None:
    cal = verbs.add_parser("calibrate", help="choose a ReID/face accept threshold from a target false-accept "
                           "rate on your labelled crops or held-out synthetic footage, and store it in the card")
    cal.add_argument("--model", required=True, help="ReID or face ONNX model")
    cal.add_argument("--data", help="labelled crops: Market-1501 layout (persons) or one folder per identity "
                                    "(faces); default: a held-out synthetic world")
    cal.add_argument("--out", help="model file to write (default: MODEL.calibrated.onnx beside the model)")
    cal.add_argument("--in-place", action="store_true", help="rewrite --model itself")
    cal.add_argument("--plot", help="PNG of the score histograms and the ROC, the threshold marked")
    cal.add_argument("--far", type=ranged_float(0.0, 1.0, low_open=True), default=1e-3, help="target false-accept rate")
    _add_world_arguments(cal, seed=600, cameras=None)
    cal.add_argument("--dry-run", action="store_true", help="print the threshold without writing a model")
    add_json_option(cal, "the threshold, TAR and pair counts")
    cal.set_defaults(func=_cmd_calibrate)


# verb -> the function adding its sub-parser, in this group's order
VERBS = {"evaluate": _add_evaluate, "calibrate": _add_calibrate}


def register(verbs: Verbs, names: Sequence[str] | None = None) -> None:
    """Add this group's verbs to ``verbs``: all of them, or those named, in the order named."""
    add_verbs(verbs, VERBS, names)
