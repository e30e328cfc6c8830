"""Training verbs of the ``edgereid`` command: ``train`` and ``distill`` (the config's ``method:`` picks the
module, :mod:`edgereid.methods.runs`), ``diffusion pretrain``, ``keypoints learn|label|readout`` and
``synth`` (the synthetic world written in a dataset layout). This module owns their sub-parsers, their
handlers and the ``--set KEY=VALUE`` config overrides they share; handlers import the training code
(torch and the rest) inside the function so that the command starts fast."""

from __future__ import annotations

import argparse
from functools import partial
from pathlib import Path
from typing import Sequence

from edgereid.cli.common import COUNT, SEED, Verbs, add_verbs, existing_model
from edgereid.errors import EdgeReidError


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
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        in_padding = float((handle.metadata() or {}).get("points_in_padding", "nan"))
    print(f"teacher: {path} (token embeddings + the K chosen indices; loss.png beside it); "
          f"{in_padding:.1%} of the chosen tokens' peaks on the index-vote crops lie in letterbox padding")
    return 0


def _cmd_keypoints_label(args: argparse.Namespace) -> int:
    from edgereid.data.crop_folder import read_images
    from edgereid.data.person_crops import save_pseudo_labels
    from edgereid.methods.stable_keypoints.teacher import KeypointTeacher

    teacher = KeypointTeacher(args.teacher, ldm=args.ldm, expected_k=args.k, tta_views=args.tta)
    paths, images = read_images(args.crops, args.limit)
    prediction = teacher.predict_images(images)
    out = save_pseudo_labels(args.out, args.crops, paths, prediction.points, prediction.confidence, teacher.sha256)
    print(f"pseudo-labels for {len(paths)} crops (K={teacher.k}): {out}; {prediction.in_padding:.1%} of the points "
          "fell in letterbox padding (confidence 0)")
    if args.preview:
        from edgereid.plots import keypoint_sheet

        print(f"preview: {keypoint_sheet(images[:24], prediction.points[:24], args.preview)}")
    return 0


def _cmd_keypoints_readout(args: argparse.Namespace) -> int:
    from edgereid.exporting.readout import store_readout

    out, count = store_readout(existing_model(args.model), args.crops, args.out, args.limit)
    print(f"read-out fitted on {count} labelled crops; wrote {out} (the pipeline now reports named joints)")
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


def _add_method_verb(verb: str, what: str, example: str, verbs: Verbs) -> None:
    """``train`` or ``distill``: a config file whose ``method:`` names what runs."""
    from edgereid.methods.runs import METHODS

    func = {"train": _cmd_train, "distill": _cmd_distill}[verb]
    sub = verbs.add_parser(verb, help=f"{what} (config: method {'|'.join(METHODS[verb])}, ...)")
    _add_config_arguments(sub, example, "optim.epochs=3")
    sub.set_defaults(func=func)


def _add_config_arguments(parser: argparse.ArgumentParser, example: str, override: str) -> None:
    """``--config FILE`` and repeatable ``--set KEY=VALUE`` overrides, with examples in the help."""
    parser.add_argument("--config", required=True, help=f"YAML file, e.g. samples/configs/{example}.yaml")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help=f"override a config key, e.g. --set {override} (repeatable)")


def _cmd_diffusion_check(args: argparse.Namespace) -> int:
    from edgereid.diffusion.ldm import load_ldm
    from edgereid.methods.ldm_pretrain import conditioning_on_world

    report = conditioning_on_world(load_ldm(args.ldm).freeze(), count=args.crops)
    print(report.summary())
    return 0 if report.passed else 1


def _add_diffusion(verbs: Verbs) -> None:
    diffusion = verbs.add_parser("diffusion", help="the latent diffusion model the StableKeypoints and DCAC "
                                 "teachers read")
    diffusion_verbs = diffusion.add_subparsers(dest="action", required=True)
    pre = diffusion_verbs.add_parser("pretrain", help="train the small text-conditioned latent diffusion model "
                                     "on the synthetic world (diffusers UNet + VAE)")
    _add_config_arguments(pre, "ldm_world", "unet.optim.epochs=1")
    pre.set_defaults(func=_cmd_diffusion_pretrain)
    check = diffusion_verbs.add_parser("check", help="does the model listen to its captions? denoising error with "
                                       "the true, a wrong and no caption on held-out world crops (exit 1 when the "
                                       "true caption is not 5 %% better than a wrong one)")
    check.add_argument("--ldm", default="samples/models/ldm_world", help="diffusion model folder with its text encoder")
    check.add_argument("--crops", type=COUNT, default=256, help="held-out crops to measure on")
    check.set_defaults(func=_cmd_diffusion_check)


def _add_keypoints(verbs: Verbs) -> None:
    keypoints = verbs.add_parser("keypoints", help="unsupervised keypoints: StableKeypoints teacher, "
                                 "pseudo-labels, linear read-out to named joints")
    kp_verbs = keypoints.add_subparsers(dest="action", required=True)
    learn = kp_verbs.add_parser("learn", help="learn StableKeypoints token embeddings on a folder of unlabelled crops")
    _add_config_arguments(learn, "stable_keypoints_world", "steps=50")
    learn.set_defaults(func=_cmd_keypoints_learn)
    label = kp_verbs.add_parser("label", help="run the teacher over a folder of crops and store pseudo-labels")
    label.add_argument("--teacher", required=True, help="teacher.safetensors from `edgereid keypoints learn`")
    label.add_argument("--crops", required=True, help="folder of crop images")
    label.add_argument("--out", required=True, help="pseudo-label file (.npz)")
    label.add_argument("--ldm", help="diffusion model folder (default: the one the teacher was learnt with)")
    label.add_argument("--k", type=COUNT, help="expected number of keypoints (checked against the teacher)")
    label.add_argument("--tta", type=COUNT, help="test-time augmentation views (default: the teacher's)")
    label.add_argument("--limit", type=COUNT, help="label at most this many crops")
    label.add_argument("--preview", help="PNG with the points drawn on the first 24 crops")
    label.set_defaults(func=_cmd_keypoints_label)
    readout = kp_verbs.add_parser("readout", help="fit the linear read-out from a student's K points to labelled "
                                  "joints and store it in the student's card")
    readout.add_argument("--model", required=True, help="keypoint student ONNX")
    readout.add_argument("--crops", required=True, help="labelled crop folder (images/ + keypoints.json)")
    readout.add_argument("--out", required=True, help="ONNX to write (may be --model)")
    readout.add_argument("--limit", type=COUNT, help="use at most this many labelled crops")
    readout.set_defaults(func=_cmd_keypoints_readout)


def _add_synth(verbs: Verbs) -> None:
    synth = verbs.add_parser("synth", help="write the synthetic world in a standard dataset layout")
    synth.add_argument("--out", required=True)
    synth.add_argument("--layout", default="market1501", choices=["market1501", "sysu", "faces", "video", "person-crops"],
                       help="video: one cam<N>.mp4 per camera with true boxes in cam<N>.json; person-crops: "
                       "scene person boxes as images with their COCO-17 joints in keypoints.json")
    synth.add_argument("--frames", type=COUNT, default=200, help="frames per camera (video and person-crops layouts)")
    synth.add_argument("--seed", type=SEED, default=0)
    synth.add_argument("--identities", type=COUNT, default=20)
    synth.add_argument("--cameras", type=COUNT, default=3)
    synth.set_defaults(func=_cmd_synth)


# verb -> the function adding its sub-parser, in this group's order
VERBS = {"train": partial(_add_method_verb, "train", "train a model that learns from labels", "coreface_teacher"),
         "distill": partial(_add_method_verb, "distill", "train a student from a teacher", "ccface_student"),
         "diffusion": _add_diffusion, "keypoints": _add_keypoints, "synth": _add_synth}


def register(verbs: Verbs, names: Sequence[str] | None = None) -> None:
    """Add this group's verbs to ``verbs``: all of them, or those named, in the order named."""
    add_verbs(verbs, VERBS, names)
