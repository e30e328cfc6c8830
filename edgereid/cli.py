"""The ``edgereid`` command. Each verb is a small function; heavy modules are imported inside it."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from edgereid.errors import EdgeReidError, ModelCardError
from edgereid.ort_session import open_session


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

    crops = load_crops(args.calib, read_card(args.model).input, limit=args.limit) if args.calib else None
    converted = convert(args.model, args.precision, crops, args.calibration_method, enforce_gate=not args.no_gate)
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

    result = build_engine(args.onnx, args.out, precision=args.precision, calib=args.calib,
                          batch=BatchProfile.parse(args.batch), workspace_mb=args.workspace,
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


def _parse_output(text: str) -> "OutputSpec":
    from edgereid.card import OutputSpec

    try:
        name, kind, dims = text.split(":")
        return OutputSpec(name, kind, tuple(int(d) for d in dims.split("x") if d))
    except ValueError as exc:
        raise EdgeReidError(f"bad --output '{text}'", expected="NAME:KIND:DIMS, e.g. emb:embedding:512 or "
                            "heat:heatmaps:17x64x48") from exc


def _cmd_card_attach(args: argparse.Namespace) -> int:
    from edgereid.card import InputSpec, ModelCard, Provenance, file_sha256, write_card

    session = open_session(_existing_model(args.onnx), error=ModelCardError)
    outputs = tuple(_parse_output(o) for o in args.output)
    if not outputs:
        graph_outputs = session.get_outputs()
        if len(graph_outputs) != 1 or args.task == "keypoints":
            raise EdgeReidError("this model's outputs must be declared",
                                got=str([o.name for o in graph_outputs]), fix="pass --output NAME:KIND:DIMS per output")
        from edgereid.card import OutputSpec

        dims = tuple(graph_outputs[0].shape[1:])
        if not all(isinstance(d, int) for d in dims):
            raise EdgeReidError("the graph's output size is symbolic", got=str(dims),
                                fix="declare it: --output NAME:embedding:DIM")
        outputs = (OutputSpec(graph_outputs[0].name, "embedding", dims),)
    embedding = [o for o in outputs if o.kind == "embedding"]
    card = ModelCard(
        name=args.name or Path(args.onnx).stem, task=args.task,
        input=InputSpec(name=session.get_inputs()[0].name, height=args.height, width=args.width,
                        color_order=args.color_order, mean=tuple(args.mean), std=tuple(args.std),
                        resize=args.resize),
        outputs=outputs, embedding_dim=embedding[0].dims[0] if embedding else 0,
        provenance=Provenance(checkpoint_sha256=file_sha256(args.onnx), source=f"attached to {Path(args.onnx).name}"))
    out = write_card(args.onnx, card, args.out)
    print(f"card attached: {out}")
    return 0


def _cmd_card_show(args: argparse.Namespace) -> int:
    from edgereid.card import read_card

    print(json.dumps(read_card(args.onnx).to_dict(), indent=2))
    return 0


def _labelled_models(pairs: list[str], example: str) -> dict[str, Path]:
    """``--model LABEL=PATH`` options of the benchmarks as {label: existing path}."""
    models = {}
    for pair in pairs:
        label, sep, path = pair.rpartition("=")
        if not sep or not label:
            raise EdgeReidError(f"bad --model '{pair}'", expected=f"LABEL=PATH ({example})")
        models[label] = _existing_model(path)
    return models


def _existing_model(name: str) -> Path:
    path = Path(name)
    if not path.is_file():
        raise EdgeReidError(f"model file not found: {path}", fix="check the path")
    return path


def _opset(path: Path) -> str:
    """The default-domain opset, read with onnx when it is installed."""
    try:
        import onnx
    except ImportError:
        return "unknown (install edgereid[export])"
    model = onnx.load(str(path), load_external_data=False)
    return str(next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), "unknown"))


def _cmd_inspect(args: argparse.Namespace) -> int:

    from edgereid.card import card_from_metadata

    path = _existing_model(args.file)
    session = open_session(path, error=ModelCardError)
    meta = session.get_modelmeta()
    card = card_from_metadata(meta.custom_metadata_map, str(path))
    print(f"{path}  ({path.stat().st_size / 1e6:.2f} MB, producer {meta.producer_name}, opset {_opset(path)})")
    for kind, values in (("input", session.get_inputs()), ("output", session.get_outputs())):
        for value in values:
            print(f"  {kind:6s} {value.name:12s} {value.type:16s} {value.shape}")
    spec = card.input
    print(f"  task {card.task}, model {card.name}, {spec.height}x{spec.width} {spec.color_order} "
          f"{spec.resize}, mean {spec.mean}, std {spec.std}")
    print(f"  provenance: checkpoint sha256 {card.provenance.checkpoint_sha256[:16]}..., "
          f"edgereid {card.provenance.edgereid_version}")
    return 0


def _cmd_doctor(args: argparse.Namespace) -> int:
    from edgereid.doctor import report

    print(report())
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from edgereid.demo import DemoOptions, run_demo

    options = DemoOptions(reid=args.reid, keypoints=args.keypoints, face=args.face, out=Path(args.out),
                          seed=args.seed, identities=args.identities, cameras=args.cameras,
                          frames=args.frames, max_batch=args.max_batch)
    summary = run_demo(options)
    print(json.dumps(summary))
    return 0


def _parse_overrides(pairs: list[str]) -> dict[str, object]:
    """``--set optim.epochs=3`` style overrides; values are parsed as YAML scalars."""
    import yaml

    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise EdgeReidError(f"bad --set '{pair}'", expected="KEY=VALUE, e.g. optim.epochs=3")
        overrides[key] = yaml.safe_load(value)
    return overrides


def _effective_config(config: object, args: argparse.Namespace) -> dict[str, object]:
    """What a run records in its outputs: the loaded config (file + overrides) and where it came from."""
    import dataclasses

    return {**dataclasses.asdict(config), "config_file": str(args.config), "overrides": args.set}


def _run_method(args: argparse.Namespace, verb: str) -> int:
    from edgereid.methods import distributed
    from edgereid.methods.runs import load_run_config, run

    config = load_run_config(args.config, _parse_overrides(args.set), verb)
    distributed.init_from_env()  # a no-op unless launched by torchrun
    # the effective config (file + overrides) is what the run records in its checkpoint and history
    checkpoint = run(config, _effective_config(config, args),
                     verb)
    main_process = distributed.is_main()
    distributed.finish()
    if main_process:
        print(f"checkpoint: {checkpoint}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    return _run_method(args, "train")


def _cmd_distill(args: argparse.Namespace) -> int:
    return _run_method(args, "distill")


def _cmd_diffusion_pretrain(args: argparse.Namespace) -> int:
    from edgereid.methods.ldm_pretrain import PretrainConfig, pretrain

    config = PretrainConfig.load(args.config, _parse_overrides(args.set))
    out = pretrain(config, _effective_config(config, args))
    print(f"latent diffusion model: {out} (loss curves and samples.png inside)")
    return 0


def _cmd_keypoints_learn(args: argparse.Namespace) -> int:
    from edgereid.methods.stable_keypoints.learning import StableKeypointsConfig, learn

    config = StableKeypointsConfig.load(args.config, _parse_overrides(args.set))
    path = learn(config, _effective_config(config, args))
    print(f"teacher: {path} (token embeddings + the K chosen indices; loss.png beside it)")
    return 0


def _cmd_keypoints_label(args: argparse.Namespace) -> int:
    from edgereid.data.crop_folder import read_images
    from edgereid.data.person_crops import save_pseudo_labels
    from edgereid.methods.stable_keypoints.teacher import KeypointTeacher

    teacher = KeypointTeacher(args.teacher, ldm=args.ldm, expected_k=args.k, tta_views=args.tta)
    paths, images = read_images(args.crops, args.limit)
    prediction = teacher.predict_images(images)
    out = save_pseudo_labels(args.out, args.crops, paths, prediction.points, prediction.confidence, teacher.sha256)
    print(f"pseudo-labels for {len(paths)} crops (K={teacher.k}): {out}")
    if args.preview:
        from edgereid.plots import keypoint_sheet

        print(f"preview: {keypoint_sheet(images[:24], prediction.points[:24], args.preview)}")
    return 0


def _cmd_keypoints_readout(args: argparse.Namespace) -> int:
    from edgereid.exporting.readout import store_readout

    out, count = store_readout(_existing_model(args.model), args.crops, args.out, args.limit)
    print(f"read-out fitted on {count} labelled crops; wrote {out} (the pipeline now reports named joints)")
    return 0


def _cmd_evaluate_keypoints(args: argparse.Namespace) -> int:
    from edgereid.eval.keypoints_unsup import evaluate, markdown_table, write_report

    models = _labelled_models(args.model, "a keypoint ONNX or a StableKeypoints teacher.safetensors")
    report = evaluate(models, args.fit, args.test, fit_limit=args.fit_limit, test_limit=args.test_limit,
                      alpha=args.alpha, tta_views=args.tta, sheets=args.out)
    paths = write_report(report, args.out)
    print(markdown_table(report))
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


def _cmd_evaluate_reid(args: argparse.Namespace) -> int:
    from edgereid.eval.reid_dg import evaluate, evaluate_dataset, markdown_table, write_report

    models = _labelled_models(args.model, "e.g. dcac=runs/dcac/teacher/model.onnx")
    if args.dataset:
        report = evaluate_dataset(models, args.dataset)
    else:
        report = evaluate(models, seed=args.seed, identities=args.identities, cameras=args.cameras, frames=args.frames)
    print(markdown_table(report))
    out = args.out or ("reid_target.json" if args.dataset else "docs/reid/reid_dg.json")
    print(f"wrote {write_report(report, out)}")
    return 0


def _cmd_evaluate_crossmodal(args: argparse.Namespace) -> int:
    from edgereid.eval.reid_crossmodal import (CrossModalProtocol, evaluate, markdown_table, student_system,
                                               teacher_system, write_report)

    systems = {label: teacher_system(path) for label, path in
               _labelled_models(args.teacher, "e.g. aio=runs/aio/teacher/model.safetensors").items()}
    for pair in args.student:
        label, sep, paths = pair.rpartition("=")
        files = paths.split(",")
        if not sep or not label or len(files) > 2 or args.branches is None:
            raise EdgeReidError(f"bad --student '{pair}'", expected="LABEL=RGB.onnx[,IR.onnx] and --branches DIR "
                                "(the AIO teacher's run folder with sketch.onnx and text.onnx)")
        systems[label] = student_system(_existing_model(files[0]),
                                        _existing_model(files[1]) if len(files) == 2 else None, args.branches)
    if not systems:
        raise EdgeReidError("nothing to evaluate", fix="give --teacher and/or --student")
    report = evaluate(systems, CrossModalProtocol(args.seed, args.identities, args.cameras, args.frames), args.sheet)
    print(markdown_table(report))
    print(f"wrote {write_report(report, args.out)}")
    return 0


def _cmd_query(args: argparse.Namespace) -> int:
    from edgereid.methods.aio.query import TextQueryEncoder
    from edgereid.gallery import Gallery

    encoder = TextQueryEncoder(args.text_encoder)
    gallery = Gallery.load(args.gallery)
    if gallery.dim != encoder.embedding_dim:
        raise EdgeReidError("the text encoder and the gallery embed into different spaces",
                            expected=f"{encoder.embedding_dim}-d gallery", got=f"{gallery.dim}-d",
                            fix="enrol the gallery with a model distilled from this AIO teacher")
    teacher = encoder.info["teacher_checkpoint_sha256"]
    provenance = gallery.card.provenance
    if provenance.checkpoint_sha256 != teacher and f"sha256 {teacher[:16]}" not in provenance.source:
        raise EdgeReidError("the gallery was not enrolled in this AIO teacher's embedding space",
                            expected=f"a model of teacher sha256 {teacher[:16]}... (its branch or a student "
                            "distilled from it)", got=f"gallery model {gallery.card.name!r}",
                            fix="enrol the gallery with the teacher's rgb.onnx or a student distilled from it")
    names, scores = gallery.search(encoder.encode(args.text), k=args.k)
    for text, row_names, row_scores in zip(args.text, names, scores):
        print(f"{text!r}:")
        for rank, (name, score) in enumerate(zip(row_names, row_scores), 1):
            print(f"  {rank}. {name}  cosine {score:.3f}")
    return 0


def _cmd_evaluate_faces(args: argparse.Namespace) -> int:
    from edgereid.eval.face_lowres import LowResProtocol, evaluate, markdown_table, write_report

    models = _labelled_models(args.model, "e.g. ccface=runs/faces/ccface_student/model.onnx")
    protocol = LowResProtocol(seed=args.seed, identities=args.identities,
                              probes_per_identity=args.probes, sizes=tuple(args.sizes), far=args.far)
    report = evaluate(models, protocol, threads=args.threads)
    paths = write_report(report, args.out)
    print(markdown_table(report))
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from edgereid.eval.calibrate import calibrate, write_threshold

    result = calibrate(args.model, far=args.far, seed=args.seed, identities=args.identities, frames=args.frames)
    print(f"{args.model}: accept score > {result.threshold.score:.4f} at FAR {args.far:g} "
          f"(TAR {result.tar:.3f}; {result.genuine_pairs} genuine / {result.impostor_pairs} impostor pairs, "
          f"world seed {args.seed})")
    if not args.dry_run:
        write_threshold(args.model, result)
        print("threshold written into the model card")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from edgereid.eval.bench import environment, format_table, plot, run_bench
    from edgereid.fileio import atomic_write_text
    from edgereid.runtime.backends import load_backend

    suffixes = {"ort": ".onnx", "trt": ".engine", "torch": ".safetensors"}
    if not args.model.endswith(suffixes[args.backend]):
        raise EdgeReidError(f"--backend {args.backend} runs {suffixes[args.backend]} files", got=args.model,
                            fix="build an engine with export/build_engine.py for trt; pass the checkpoint for torch")
    batches = [int(b) for b in args.batch.split(",")]
    backend = load_backend(args.model, threads=args.threads, providers=(args.device,) if args.backend == "torch" else None)
    rows = run_bench(backend, batches, e2e=args.e2e, min_seconds=args.seconds,
                     progress=lambda msg: print(f"  timing {msg} ...", file=sys.stderr))
    print(f"{args.model} on {backend.name} ({', '.join(backend.providers)})")
    print(format_table(rows))
    if args.json:
        atomic_write_text(args.json, json.dumps({"model": args.model, "backend": backend.name,
                                                 "providers": list(backend.providers), "environment": environment(),
                                                 "rows": [r.to_dict() for r in rows]}, indent=2))
    if args.plot:
        print(f"plot: {plot(rows, args.plot, f'{backend.card.name} on {backend.providers[0]}')}")
    return 0


def _cmd_synth(args: argparse.Namespace) -> int:
    from edgereid.data.synthetic import World, WorldConfig
    from edgereid.data.video import write_scene_videos
    from edgereid.data.person_crops import write_person_crops

    world = World(WorldConfig(seed=args.seed, num_identities=args.identities, num_cameras=args.cameras))
    writers = {"market1501": world.write_market1501, "sysu": world.write_sysu_like, "faces": world.write_faces,
               "person-crops": lambda root: write_person_crops(world, root, frames_per_camera=args.frames),
               "video": lambda root: write_scene_videos(world, root, frames=args.frames)[0].parent}
    root = writers[args.layout](Path(args.out))
    print(f"wrote the synthetic world (seed {args.seed}) in {args.layout} layout to {root}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edgereid", description="Identity models from research to camera "
                                     "gateways: export, inspect, run and benchmark.")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    export = verbs.add_parser("export", help="export a checkpoint to ONNX with its model card")
    source = export.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help="safetensors checkpoint written by edgereid")
    source.add_argument("--model", help="registered model name, exported with random weights (for trying "
                        "the SDK); the checkpoint is saved beside --out")
    export.add_argument("--out", required=True, help="ONNX file to write")
    export.add_argument("--opset", type=int, default=17)
    export.add_argument("--seed", type=int, default=0, help="seed of the random weights (--model)")
    export.set_defaults(func=_cmd_export)

    card = verbs.add_parser("card", help="attach or show the model card of an ONNX file")
    card_verbs = card.add_subparsers(dest="card_verb", required=True)
    attach = card_verbs.add_parser("attach", help="attach a card to a third-party ONNX file")
    attach.add_argument("onnx")
    attach.add_argument("--task", required=True, choices=["reid", "keypoints", "face"])
    attach.add_argument("--height", type=int, required=True)
    attach.add_argument("--width", type=int, required=True)
    attach.add_argument("--mean", type=float, nargs=3, default=[123.675, 116.28, 103.53],
                        help="per channel, 0-255 units, in --color-order")
    attach.add_argument("--std", type=float, nargs=3, default=[58.395, 57.12, 57.375])
    attach.add_argument("--color-order", default="RGB", choices=["RGB", "BGR"])
    attach.add_argument("--resize", default="stretch", choices=["stretch", "letterbox"])
    attach.add_argument("--output", action="append", default=[], help="NAME:KIND:DIMS (repeat per output)")
    attach.add_argument("--name", help="model name in the card (default: file stem)")
    attach.add_argument("--out", help="write here instead of in place")
    attach.set_defaults(func=_cmd_card_attach)
    show = card_verbs.add_parser("show", help="print the card as JSON")
    show.add_argument("onnx")
    show.set_defaults(func=_cmd_card_show)

    inspect = verbs.add_parser("inspect", help="card, inputs, outputs and size of a model file")
    inspect.add_argument("file")
    inspect.set_defaults(func=_cmd_inspect)

    doctor = verbs.add_parser("doctor", help="versions, providers, GPU; what is missing for which feature")
    doctor.set_defaults(func=_cmd_doctor)

    demo = verbs.add_parser("demo", help="multi-camera scene from the synthetic world through the pipeline")
    demo.add_argument("--reid", default="samples/models/reid/model.onnx", help="ReID ONNX model (default: bundled)")
    demo.add_argument("--keypoints", default="samples/models/keypoints/model.onnx",
                      help="keypoint ONNX model (default: bundled; '' to skip)")
    demo.add_argument("--face", default="samples/models/face/model.onnx",
                      help="face ONNX model (default: bundled; '' to skip)")
    demo.add_argument("--out", default="edgereid-demo", help="folder for the video and contact sheet")
    demo.add_argument("--seed", type=int, default=1000)
    demo.add_argument("--identities", type=int, default=20)
    demo.add_argument("--cameras", type=int, default=3)
    demo.add_argument("--frames", type=int, default=100, help="frames per camera (10 frames/s)")
    demo.add_argument("--max-batch", type=int, default=32)
    demo.set_defaults(func=_cmd_demo)

    from edgereid.methods.runs import METHODS

    for verb, what, example, func in (
            ("train", "train a model that learns from labels", "coreface_teacher", _cmd_train),
            ("distill", "train a student from a teacher", "ccface_student", _cmd_distill)):
        sub = verbs.add_parser(verb, help=f"{what} (config: method {'|'.join(METHODS[verb])}, ...)")
        sub.add_argument("--config", required=True, help=f"YAML file, e.g. samples/configs/{example}.yaml")
        sub.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                         help="override a config key, e.g. --set optim.epochs=3 (repeatable)")
        sub.set_defaults(func=func)

    diffusion = verbs.add_parser("diffusion", help="the latent diffusion model the StableKeypoints and DCAC "
                                 "teachers read")
    diffusion_verbs = diffusion.add_subparsers(dest="action", required=True)
    pre = diffusion_verbs.add_parser("pretrain", help="train the small text-conditioned latent diffusion model "
                                     "on the synthetic world (diffusers UNet + VAE)")
    pre.add_argument("--config", required=True, help="YAML file, e.g. samples/configs/ldm_world.yaml")
    pre.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override a config key, e.g. --set unet.optim.epochs=1 (repeatable)")
    pre.set_defaults(func=_cmd_diffusion_pretrain)

    keypoints = verbs.add_parser("keypoints", help="unsupervised keypoints: StableKeypoints teacher, "
                                 "pseudo-labels, linear read-out to named joints")
    kp_verbs = keypoints.add_subparsers(dest="action", required=True)
    learn = kp_verbs.add_parser("learn", help="learn StableKeypoints token embeddings on a folder of unlabelled crops")
    learn.add_argument("--config", required=True, help="YAML file, e.g. samples/configs/stable_keypoints_world.yaml")
    learn.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config key, e.g. --set steps=50 (repeatable)")
    learn.set_defaults(func=_cmd_keypoints_learn)
    label = kp_verbs.add_parser("label", help="run the teacher over a folder of crops and store pseudo-labels")
    label.add_argument("--teacher", required=True, help="teacher.safetensors from `edgereid keypoints learn`")
    label.add_argument("--crops", required=True, help="folder of crop images")
    label.add_argument("--out", required=True, help="pseudo-label file (.npz)")
    label.add_argument("--ldm", help="diffusion model folder (default: the one the teacher was learnt with)")
    label.add_argument("--k", type=int, help="expected number of keypoints (checked against the teacher)")
    label.add_argument("--tta", type=int, help="test-time augmentation views (default: the teacher's)")
    label.add_argument("--limit", type=int, help="label at most this many crops")
    label.add_argument("--preview", help="PNG with the points drawn on the first 24 crops")
    label.set_defaults(func=_cmd_keypoints_label)
    readout = kp_verbs.add_parser("readout", help="fit the linear read-out from a student's K points to labelled "
                                  "joints and store it in the student's card")
    readout.add_argument("--model", required=True, help="keypoint student ONNX")
    readout.add_argument("--crops", required=True, help="labelled crop folder (images/ + keypoints.json)")
    readout.add_argument("--out", required=True, help="ONNX to write (may be --model)")
    readout.add_argument("--limit", type=int, help="use at most this many labelled crops")
    readout.set_defaults(func=_cmd_keypoints_readout)

    conv = verbs.add_parser("convert", help="FP16 or INT8 (Q/DQ) ONNX with the accuracy gate, for strongly "
                                             "typed TensorRT builds")
    conv.add_argument("--model", required=True, help="FP32 ONNX with a card")
    conv.add_argument("--precision", required=True, choices=["fp16", "int8"])
    conv.add_argument("--calib", help="folder of crop images: half calibrate, half are held out for the gate")
    conv.add_argument("--out", required=True)
    conv.add_argument("--limit", type=int, default=512, help="most crops read from --calib")
    conv.add_argument("--calibration-method", default="minmax", choices=["minmax", "percentile", "entropy"])
    conv.add_argument("--no-gate", action="store_true", help="write the model even if the gate fails (for study)")
    conv.set_defaults(func=_cmd_convert)

    engine = verbs.add_parser("engine", help="build a TensorRT / TensorRT-RTX engine (= export/build_engine.py)")
    engine.add_argument("--onnx", required=True, help="FP32 ONNX with a card")
    engine.add_argument("--out", required=True, help="engine file; a sidecar <out>.json is written beside it")
    engine.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "int8"])
    engine.add_argument("--calib", help="folder of crop images (needed for fp16 and int8)")
    engine.add_argument("--batch", default="1:8:32", help="optimisation profile MIN:OPT:MAX (default 1:8:32)")
    engine.add_argument("--workspace", type=int, default=1024, help="builder workspace in MB")
    engine.add_argument("--timing-cache", help="timing cache file (default: <out>.timing)")
    engine.add_argument("--cache-dir", help="engine cache folder, keyed by ONNX hash, TensorRT, GPU, precision, profile")
    engine.add_argument("--compute-capability", help="target GPU, e.g. 8.6 (TensorRT-RTX ahead-of-time builds)")
    engine.add_argument("--flavour", choices=["tensorrt", "tensorrt_rtx"], help="default: the first importable")
    engine.add_argument("--plugin", action="append", default=[], help="plugin library to load (repeatable)")
    engine.set_defaults(func=_cmd_engine)

    evaluate = verbs.add_parser("evaluate", help="benchmarks on held-out synthetic data")
    benchmarks = evaluate.add_subparsers(dest="benchmark", required=True)
    faces = benchmarks.add_parser("faces", help="low-resolution faces: HR gallery, probes at 12-32 px, "
                                                "TAR@FAR and top-1 per size, with the raw-pixel baseline")
    faces.add_argument("--model", action="append", required=True, metavar="LABEL=PATH",
                       help="a face ONNX model with a card (repeatable)")
    faces.add_argument("--out", default="docs/faces", help="folder for the JSON, markdown table and plots")
    faces.add_argument("--seed", type=int, default=700, help="held-out world seed (not a training seed)")
    faces.add_argument("--identities", type=int, default=100)
    faces.add_argument("--probes", type=int, default=5, help="probe pictures per identity")
    faces.add_argument("--sizes", type=int, nargs="+", default=[12, 16, 24, 32], help="probe face sizes (px)")
    faces.add_argument("--far", type=float, default=1e-3)
    faces.add_argument("--threads", type=int, default=2)
    faces.set_defaults(func=_cmd_evaluate_faces)

    reid_eval = benchmarks.add_parser("reid", help="person ReID on an unseen world (new identities and camera "
                                      "domains): mAP and rank-1 through the pipeline")
    reid_eval.add_argument("--model", action="append", required=True, metavar="LABEL=PATH",
                           help="a ReID ONNX model with a card (repeatable)")
    reid_eval.add_argument("--dataset", help="score on the query/gallery of this Market-1501-layout folder (a real "
                           "target domain) instead of the synthetic world")
    reid_eval.add_argument("--seed", type=int, default=720, help="held-out world seed (not a training seed)")
    reid_eval.add_argument("--identities", type=int, default=60)
    reid_eval.add_argument("--cameras", type=int, default=4)
    reid_eval.add_argument("--frames", type=int, default=60, help="frames per camera")
    reid_eval.add_argument("--out", help="JSON report (default: docs/reid/reid_dg.json for the world, "
                           "reid_target.json for --dataset)")
    reid_eval.set_defaults(func=_cmd_evaluate_reid)

    cross = benchmarks.add_parser("crossmodal", help="IR->RGB, sketch->RGB, text->RGB and RGB+text->RGB "
                                  "retrieval on an unseen world (AIO teacher and its students)")
    cross.add_argument("--teacher", action="append", default=[], metavar="LABEL=PATH",
                       help="an AIO teacher model.safetensors (every query kind through it; repeatable)")
    cross.add_argument("--student", action="append", default=[], metavar="LABEL=RGB.onnx[,IR.onnx]",
                       help="student ONNX models (repeatable); text and sketch queries use --branches")
    cross.add_argument("--branches", help="the AIO teacher's run folder (sketch.onnx, text.onnx, tokenizer)")
    cross.add_argument("--seed", type=int, default=730, help="held-out world seed (not a training seed)")
    cross.add_argument("--identities", type=int, default=60)
    cross.add_argument("--cameras", type=int, default=4, help="the last camera records IR (needs >= 4)")
    cross.add_argument("--frames", type=int, default=60, help="frames per camera")
    cross.add_argument("--out", default="docs/reid/crossmodal.json", help="JSON report")
    cross.add_argument("--sheet", help="PNG: text and IR queries of the first model with their top-5 gallery crops")
    cross.set_defaults(func=_cmd_evaluate_crossmodal)

    kp_eval = benchmarks.add_parser("keypoints", help="unsupervised keypoints read out linearly to labelled "
                                    "joints: PCK and NME against the mean-pose baseline")
    kp_eval.add_argument("--model", action="append", required=True, metavar="LABEL=PATH",
                         help="keypoint ONNX or teacher.safetensors (repeatable)")
    kp_eval.add_argument("--fit", required=True, help="labelled crop folder the read-outs are fitted on")
    kp_eval.add_argument("--test", required=True, help="held-out labelled crop folder")
    kp_eval.add_argument("--fit-limit", type=int, default=400)
    kp_eval.add_argument("--test-limit", type=int, default=500)
    kp_eval.add_argument("--alpha", type=float, default=0.1, help="PCK threshold, fraction of the crop's larger side")
    kp_eval.add_argument("--tta", type=int, help="teacher test-time augmentation views (default: the teacher's)")
    kp_eval.add_argument("--out", default="docs/keypoints", help="folder for the JSON and markdown table")
    kp_eval.set_defaults(func=_cmd_evaluate_keypoints)

    query = verbs.add_parser("query", help="search a ReID gallery with text descriptions (the AIO teacher's "
                             "exported text branch, ONNX Runtime on the CPU)")
    query.add_argument("text", nargs="+", help='e.g. "a person in a red jacket with a backpack"')
    query.add_argument("--text-encoder", required=True,
                       help="folder with text.onnx, tokenizer.json, text_encoder.json (an AIO teacher's run folder)")
    query.add_argument("--gallery", required=True, help="a gallery enrolled with a model in the teacher's space")
    query.add_argument("-k", type=int, default=5, help="identities to list per query")
    query.set_defaults(func=_cmd_query)

    cal = verbs.add_parser("calibrate", help="choose a ReID/face accept threshold from a target false-accept "
                           "rate on held-out synthetic footage, and store it in the card")
    cal.add_argument("--model", required=True, help="ReID or face ONNX model (rewritten in place)")
    cal.add_argument("--far", type=float, default=1e-3, help="target false-accept rate")
    cal.add_argument("--seed", type=int, default=600, help="held-out world seed (not a training or demo seed)")
    cal.add_argument("--identities", type=int, default=60)
    cal.add_argument("--frames", type=int, default=60, help="frames per camera")
    cal.add_argument("--dry-run", action="store_true", help="print the threshold without writing it")
    cal.set_defaults(func=_cmd_calibrate)

    bench = verbs.add_parser("bench", help="latency and crops/s per batch size (raw, end to end, per-crop loop)")
    bench.add_argument("--model", required=True, help="ONNX model (ort), engine with sidecar (trt) or checkpoint (torch)")
    bench.add_argument("--batch", default="1,8,32", help="comma-separated batch sizes")
    bench.add_argument("--backend", default="ort", choices=["ort", "trt", "torch"],
                       help="ort: ONNX Runtime; trt: TensorRT engine (GPU); torch: the checkpoint")
    bench.add_argument("--device", default="cpu", help="torch device, e.g. cuda")
    bench.add_argument("--e2e", action="store_true", help="also time frames+boxes in, outputs out, and the "
                       "per-crop loop")
    bench.add_argument("--seconds", type=float, default=2.0, help="minimum timing per measurement")
    bench.add_argument("--threads", type=int, help="ONNX Runtime intra-op threads")
    bench.add_argument("--json", help="write the rows as a JSON list")
    bench.add_argument("--plot", help="write a PNG plot of crops/s")
    bench.set_defaults(func=_cmd_bench)

    synth = verbs.add_parser("synth", help="write the synthetic world in a standard dataset layout")
    synth.add_argument("--out", required=True)
    synth.add_argument("--layout", default="market1501", choices=["market1501", "sysu", "faces", "video", "person-crops"],
                       help="video: one cam<N>.mp4 per camera with true boxes in cam<N>.json; person-crops: "
                       "scene person boxes as images with their COCO-17 joints in keypoints.json")
    synth.add_argument("--frames", type=int, default=200, help="frames per camera (video and person-crops layouts)")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--identities", type=int, default=20)
    synth.add_argument("--cameras", type=int, default=3)
    synth.set_defaults(func=_cmd_synth)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: errors edgereid raises on purpose print cleanly and exit 2."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except EdgeReidError as exc:
        print(f"edgereid {args.verb}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
