"""Model-file verbs of the ``edgereid`` command: ``export`` (checkpoint to ONNX with its card), ``convert``
(FP16/INT8 ONNX behind the accuracy gate), ``engine`` (TensorRT builds), ``card attach|show|presets`` and
``inspect``. This module owns their sub-parsers and handlers; the handlers parse arguments, call the
library (:mod:`edgereid.exporting`, :mod:`edgereid.card_tools`, :mod:`edgereid.card`) and print, importing
it inside the function so that the command starts fast."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from edgereid.cli.common import (COUNT, FINITE, SEED, Verbs, add_json_option, add_model_argument, add_verbs,
                                 existing_model, int_list, model_argument, ranged_float, ranged_int, write_json)
from edgereid.errors import EdgeReidError, ExportError

# card attach's flags that become card_for_onnx keywords; None (not given) leaves a preset's value or the default
_CARD_OPTIONS = ("task", "height", "width", "mean", "std", "color_order", "layout", "dtype", "channels", "normalize",
                 "face_template", "keypoint_decode", "simcc_split_ratio", "resize")


def _cmd_export(args: argparse.Namespace) -> int:
    from edgereid.exporting.onnx_export import export_checkpoint

    checkpoint = args.checkpoint
    if args.model:
        import torch

        from edgereid.models.checkpoint import save_checkpoint
        from edgereid.models import create_model

        torch.manual_seed(args.seed)
        checkpoint = save_checkpoint(create_model(args.model), Path(args.out).with_suffix(".safetensors"))
        print(f"random-initialised {args.model} (seed {args.seed}) saved to {checkpoint}")
    report = export_checkpoint(checkpoint, args.out, opset=args.opset)
    print(f"wrote {args.out}: parity with torch OK ({report.summary()})")
    return 0


def _cmd_convert(args: argparse.Namespace) -> int:
    from edgereid.card import read_card
    from edgereid.data.crop_folder import load_crops
    from edgereid.exporting.precision import convert, save_converted

    existing_model(args.model)
    if args.precision == "fp32" and not args.uint8_input:
        raise ExportError("--precision fp32 converts nothing by itself", expected="--uint8-input with it",
                         fix="add --uint8-input, or pick fp16, bf16 or int8")
    crops = load_crops(args.calib, read_card(args.model).input, limit=args.limit) if args.calib else None
    source = f"{len(crops)} crops of {args.calib}" if crops is not None else "synthetic crops (no --calib)"
    print(f"converting {args.model} to {args.precision}: range check, conversion and accuracy gate on {source} ...",
          file=sys.stderr, flush=True)
    converted = convert(args.model, args.precision, crops, args.calibration_method, enforce_gate=not args.no_gate,
                        int8_target=args.target, uint8_input=args.uint8_input)
    if converted.report:
        print(converted.report.summary())
    if converted.notes:
        print(converted.notes)
    if converted.report and not converted.report.passed:
        print("gate failed; --no-gate given, writing anyway", file=sys.stderr)
    print(f"wrote {save_converted(converted, args.out)}")
    return 0


def _cmd_engine(args: argparse.Namespace) -> int:
    from edgereid.engine_file import BatchProfile
    from edgereid.exporting.engine import build_engine

    result = build_engine(args.model, args.out, precision=args.precision, calib=args.calib,
                          batch=BatchProfile.parse(args.batch) if args.batch else None, workspace_mb=args.workspace,
                          timing_cache=args.timing_cache, cache_dir=args.cache_dir,
                          compute_capability=args.compute_capability, flavour=args.flavour,
                          plugins=tuple(args.plugin))
    if result.gate:
        print(f"accuracy gate passed: {json.dumps({k: v for k, v in result.gate.items() if v is not None})}")
    key = result.key
    print(f"{'reused cached' if result.cached else 'built'} {result.engine} ({result.engine.stat().st_size} bytes; "
          f"{key.flavour} {key.trt_version}, compute capability {key.compute_capability}, {key.precision}, "
          f"batch {key.profile}); sidecar {result.sidecar}")
    return 0


def _cmd_card_attach(args: argparse.Namespace) -> int:
    from edgereid.card import write_card
    from edgereid.card_presets import preset_options
    from edgereid.card_tools import card_for_onnx, parse_output_spec

    path = existing_model(model_argument(args))
    given = {key: getattr(args, key) for key in _CARD_OPTIONS}
    options = preset_options(args.preset, given) if args.preset else {k: v for k, v in given.items() if v is not None}
    missing = [f"--{key}" for key in ("task", "height", "width") if key not in options]
    if missing:
        raise EdgeReidError(f"card attach needs {', '.join(missing)}", expected="--task, --height and --width, "
                            "or a --preset that sets them", fix="run `edgereid card presets` for the known families")
    card = card_for_onnx(path, outputs=[parse_output_spec(o) for o in args.output], name=args.name, **options)
    out = write_card(path, card, args.out)
    print(f"card attached: {out}" + (f" (preset {args.preset})" if args.preset else ""))
    return 0


def _cmd_card_presets(args: argparse.Namespace) -> int:
    from edgereid.card_presets import PRESETS

    for preset in PRESETS.values():
        settings = ", ".join(f"{key} {value}" for key, value in preset.options.items())
        print(f"{preset.name}\n  {preset.summary}\n  {settings}\n  source: {preset.source}")
    write_json(args.json, {name: {"summary": p.summary, "source": p.source, "options": dict(p.options)}
                           for name, p in PRESETS.items()})
    return 0


def _cmd_card_show(args: argparse.Namespace) -> int:
    from edgereid.card import read_card

    print(json.dumps(read_card(existing_model(model_argument(args))).to_dict(), indent=2))
    return 0


def _cmd_inspect(args: argparse.Namespace) -> int:
    from edgereid.card_tools import format_inspect_report, inspect_model

    report = inspect_model(existing_model(model_argument(args)))
    print(format_inspect_report(report))
    write_json(args.json, {**report, "card": report["card"].to_dict()})
    return 0


def _add_export(verbs: Verbs) -> None:
    export = verbs.add_parser("export", help="export a checkpoint to ONNX with its model card")
    source = export.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help="safetensors checkpoint written by edgereid")
    source.add_argument("--model", help="registered model name, exported with random weights (for trying "
                        "the SDK); the checkpoint is saved beside --out")
    export.add_argument("--out", required=True, help="ONNX file to write")
    export.add_argument("--opset", type=COUNT, default=17)
    export.add_argument("--seed", type=SEED, default=0, help="seed of the random weights (--model)")
    export.set_defaults(func=_cmd_export)


def _add_card(verbs: Verbs) -> None:
    card = verbs.add_parser("card", help="attach, show or list presets of model cards for ONNX files")
    card_verbs = card.add_subparsers(dest="card_verb", required=True)
    attach = card_verbs.add_parser("attach", help="attach a card to a third-party ONNX file")
    add_model_argument(attach, "third-party ONNX file")
    attach.add_argument("--preset", help="a known model family's input contract (see `edgereid card presets`); "
                        "the flags below override it")
    attach.add_argument("--task", choices=["reid", "keypoints", "face"])
    attach.add_argument("--height", type=COUNT)
    attach.add_argument("--width", type=COUNT)
    attach.add_argument("--mean", type=FINITE, nargs="+",
                        help="3 values per channel (0-255 units, in --color-order), or 1 for --normalize scalar "
                             "(default: ImageNet's)")
    attach.add_argument("--std", type=FINITE, nargs="+")
    attach.add_argument("--color-order", type=str.upper, choices=["RGB", "BGR"])
    attach.add_argument("--layout", type=str.upper, choices=["NCHW", "NHWC"])
    attach.add_argument("--dtype", choices=["float32", "float16", "uint8"])
    attach.add_argument("--channels", type=int, choices=[1, 3], help="1: grey (BT.601 luma)")
    attach.add_argument("--normalize", choices=["per-channel", "scalar", "none"],
                        help="none: the graph normalises (raw 0-255 pixels; uint8 inputs)")
    attach.add_argument("--face-template", choices=["arcface", "insightface"],
                        help="face models: the ArcFace template scaled to the input, or InsightFace's convention "
                             "(its 128-px models shift the template 8 px)")
    attach.add_argument("--decode", dest="keypoint_decode", choices=["coords", "heatmap", "heatmap_udp", "simcc"],
                        help="keypoint models: in-graph coordinates, raw heatmaps (heatmap_udp: ViTPose's UDP "
                             "heatmaps), or SimCC x/y logits")
    attach.add_argument("--simcc-split-ratio", type=ranged_float(0.0, 64.0, low_open=True),
                        help="SimCC bins per input pixel (RTMPose: 2.0)")
    attach.add_argument("--resize", choices=["stretch", "letterbox"])
    attach.add_argument("--output", action="append", default=[], help="NAME:KIND:DIMS (repeat per output)")
    attach.add_argument("--name", help="model name in the card (default: file stem)")
    attach.add_argument("--out", help="write here instead of in place")
    attach.set_defaults(func=_cmd_card_attach)
    show = card_verbs.add_parser("show", help="print the card as JSON")
    add_model_argument(show, "ONNX file")
    show.set_defaults(func=_cmd_card_show)
    presets = card_verbs.add_parser("presets", help="list the known model families' input contracts and sources")
    add_json_option(presets, "the presets with their settings and sources")
    presets.set_defaults(func=_cmd_card_presets)


def _add_inspect(verbs: Verbs) -> None:
    inspect = verbs.add_parser("inspect", help="card, inputs, outputs and size of a model file")
    add_model_argument(inspect, "model file")
    add_json_option(inspect, "the report (inputs, outputs, card)")
    inspect.set_defaults(func=_cmd_inspect)


def _add_convert(verbs: Verbs) -> None:
    conv = verbs.add_parser("convert", help="FP16 or INT8 (Q/DQ) ONNX with the accuracy gate, for strongly "
                                             "typed TensorRT builds and CPUs; BF16 gate for OpenVINO")
    conv.add_argument("--model", required=True, help="FP32 ONNX with a card")
    conv.add_argument("--precision", required=True, choices=["fp32", "fp16", "bf16", "int8"],
                      help="bf16 keeps the FP32 graph and records its passed gate: the OpenVINO backend then runs it "
                           "in BF16 (AMX / AVX-512 BF16 CPUs); fp32 only with --uint8-input")
    conv.add_argument("--calib", help="folder of crop images: half calibrate, half are held out for the gate")
    conv.add_argument("--out", required=True)
    conv.add_argument("--limit", type=COUNT, default=512, help="most crops read from --calib")
    conv.add_argument("--calibration-method", default="minmax", choices=["minmax", "percentile", "entropy"])
    conv.add_argument("--target", default="tensorrt", choices=["tensorrt", "cpu"],
                      help="INT8 form: tensorrt (symmetric Q/DQ before weighted layers, what TensorRT wants) or cpu "
                           "(unsigned activations, integer chains that ONNX Runtime and OpenVINO run fast)")
    conv.add_argument("--uint8-input", action="store_true",
                      help="the graph takes raw uint8 pixels and normalises itself (card: normalize none): cheaper "
                           "preprocessing, and INT8 on OpenVINO runs from integers (fp32, bf16, int8; not for "
                           "letterbox or face cards)")
    conv.add_argument("--no-gate", action="store_true", help="write the model even if the gate fails (for study)")
    conv.set_defaults(func=_cmd_convert)


def _add_engine(verbs: Verbs) -> None:
    engine = verbs.add_parser("engine", help="build a TensorRT / TensorRT-RTX engine (= export/build_engine.py)")
    engine.add_argument("--model", "--onnx", dest="model", required=True, help="FP32 ONNX with a card (--onnx: "
                        "the old spelling)")
    engine.add_argument("--out", required=True, help="engine file; a sidecar <out>.json is written beside it")
    engine.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "int8"])
    engine.add_argument("--calib", help="folder of crop images (needed for fp16 and int8)")
    engine.add_argument("--batch", help="optimisation profile MIN:OPT:MAX (default 1:8:32; a fixed-batch model's own)")
    engine.add_argument("--workspace", type=COUNT, default=1024, help="builder workspace in MB")
    engine.add_argument("--timing-cache", help="timing cache file (default: <out>.timing)")
    engine.add_argument("--cache-dir", help="engine cache folder, keyed by ONNX hash, TensorRT, GPU, precision, profile")
    engine.add_argument("--compute-capability", help="target GPU, e.g. 8.6 (TensorRT-RTX ahead-of-time builds)")
    engine.add_argument("--flavour", choices=["tensorrt", "tensorrt_rtx"], help="default: the first importable")
    engine.add_argument("--plugin", action="append", default=[], help="plugin library to load (repeatable)")
    engine.set_defaults(func=_cmd_engine)


# verb -> the function adding its sub-parser, in this group's order
def _cmd_deepstream(args: argparse.Namespace) -> int:
    from edgereid.exporting.deepstream import DEEPSTREAM_VERSION, write_deepstream_configs

    files = write_deepstream_configs(existing_model(args.model), args.out, batch=args.batch, precision=args.precision,
                                     gie_id=args.gie_id, operate_on_gie_id=args.operate_on_gie_id,
                                     class_ids=tuple(args.class_ids), gpu_id=args.gpu_id)
    print(f"DeepStream {DEEPSTREAM_VERSION} configs for {args.model}:")
    for label, path in (("model", files.onnx), ("nvinfer SGIE", files.nvinfer), ("nvdspreprocess", files.preprocess),
                        ("nvtracker ReID section", files.tracker_reid)):
        if path is not None:
            print(f"  {label:24s} {path}")
    if files.folded:
        print("  the card's per-channel std is folded into the model (nvinfer has one scale for all channels)")
    return 0


def _add_deepstream(verbs: Verbs) -> None:
    ds = verbs.add_parser("deepstream", help="DeepStream 8.0 configs from a model's card: nvinfer secondary GIE, "
                          "nvdspreprocess, nvtracker ReID section (per-channel std folded into the ONNX)")
    ds.add_argument("--model", required=True, help="ONNX model with a card")
    ds.add_argument("--out", required=True, help="folder for the configs and the ONNX they name")
    ds.add_argument("--batch", type=ranged_int(1, 1024), default=16, help="batch size of the engine (default 16)")
    ds.add_argument("--precision", default="fp16", choices=["fp32", "fp16", "int8"])
    ds.add_argument("--gie-id", type=ranged_int(1, 1 << 30), default=2, help="this GIE's gie-unique-id")
    ds.add_argument("--operate-on-gie-id", type=ranged_int(1, 1 << 30), default=1, help="the detector's gie-unique-id")
    ds.add_argument("--class-ids", type=int_list(0, 1 << 20), default="0", help="detector classes to run on "
                    "(comma-separated; default 0, persons in COCO detectors)")
    ds.add_argument("--gpu-id", type=ranged_int(0, 64), default=0)
    ds.set_defaults(func=_cmd_deepstream)


VERBS = {"export": _add_export, "card": _add_card, "inspect": _add_inspect, "convert": _add_convert,
         "engine": _add_engine, "deepstream": _add_deepstream}


def register(verbs: Verbs, names: Sequence[str] | None = None) -> None:
    """Add this group's verbs to ``verbs``: all of them, or those named, in the order named."""
    add_verbs(verbs, VERBS, names)
