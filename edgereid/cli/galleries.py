"""``edgereid gallery``: make and use identity galleries from the command line. ``enroll`` embeds a folder of
crops (one sub-folder per identity) with a model and adds them to a gallery file (created when missing),
``list`` and ``info`` show what a gallery holds, ``remove`` drops identities, ``search`` finds the closest
identities of crop images. This module owns the parsers and handlers; the work is in
:mod:`edgereid.pipeline.enrollment` and :mod:`edgereid.gallery`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

from edgereid.cli.common import COUNT, Verbs, add_json_option, add_verbs, existing_model, write_json


def _open_model(path: str):
    from edgereid.runtime.backends import load_backend
    from edgereid.runtime.model import crop_model_for

    return crop_model_for(load_backend(existing_model(path)))


def _cmd_enroll(args: argparse.Namespace) -> int:
    from edgereid.gallery import Gallery
    from edgereid.pipeline.enrollment import enroll_folder

    with _open_model(args.model) as model:
        gallery = Gallery.load(args.gallery, model.card) if Path(args.gallery).exists() else Gallery(model.card)
        enrolled = enroll_folder(gallery, model, args.crops)
    path = gallery.save(args.gallery)
    print(f"enrolled {sum(enrolled.values())} crops of {len(enrolled)} identities into {path} "
          f"({len(gallery.identities)} identities, {len(gallery)} vectors)")
    write_json(args.json, {"gallery": str(path), "enrolled": enrolled})
    return 0


def _info(gallery) -> dict[str, object]:
    card = gallery.card
    return {"model": card.name, "task": card.task, "embedding_dim": gallery.dim, "identities": len(gallery.identities),
            "vectors": len(gallery), "threshold": gallery.threshold,
            "checkpoint_sha256": card.provenance.checkpoint_sha256}


def _cmd_info(args: argparse.Namespace) -> int:
    from edgereid.gallery import Gallery

    info = _info(Gallery.load(args.gallery))
    for key, value in info.items():
        print(f"{key:18s} {value}")
    write_json(args.json, info)
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from edgereid.gallery import Gallery

    counts = Gallery.load(args.gallery).counts()
    for identity, count in counts.items():
        print(f"{identity}\t{count}")
    write_json(args.json, counts)
    return 0


def _cmd_remove(args: argparse.Namespace) -> int:
    from edgereid.errors import InputError
    from edgereid.gallery import Gallery

    gallery = Gallery.load(args.gallery)
    unknown = sorted(set(args.identity) - set(gallery.identities))
    if unknown:
        raise InputError(f"{args.gallery} holds no identity {unknown[0]!r:.60}", got=f"{len(unknown)} unknown names",
                         fix="see `edgereid gallery list`")
    removed = {identity: gallery.remove(identity) for identity in args.identity}
    gallery.save(args.gallery)
    print(f"removed {sum(removed.values())} vectors of {len(removed)} identities")
    write_json(args.json, removed)
    return 0


def _cmd_search(args: argparse.Namespace) -> int:
    from edgereid.gallery import Gallery
    from edgereid.pipeline.enrollment import embed_images, read_image

    with _open_model(args.model) as model:
        gallery = Gallery.load(args.gallery, model.card)
        embeddings = embed_images(model, [read_image(Path(p)) for p in args.image])
    ids, scores = gallery.search(embeddings, k=args.k)
    results = {}
    for image, row_ids, row_scores in zip(args.image, ids, scores):
        results[image] = [{"identity": i, "score": round(float(s), 4)} for i, s in zip(row_ids, row_scores)]
        print(image + ": " + ", ".join(f"{i} {s:.3f}" for i, s in zip(row_ids, row_scores)))
    write_json(args.json, results)
    return 0


def _add(verbs: Verbs) -> None:
    gallery = verbs.add_parser("gallery", help="enroll crops into a gallery file, list, inspect, remove, search")
    actions = gallery.add_subparsers(dest="action", required=True)
    enroll = actions.add_parser("enroll", help="embed a crop folder (one sub-folder per identity) and enroll it")
    enroll.add_argument("crops", help="folder of identity sub-folders with crop images")
    enroll.add_argument("--model", required=True, help="ReID or face ONNX model (its card binds the gallery)")
    enroll.add_argument("--gallery", required=True, help="gallery file (.npz), created when missing")
    search = actions.add_parser("search", help="the closest identities of crop images")
    search.add_argument("image", nargs="+", help="crop images")
    search.add_argument("--model", required=True)
    search.add_argument("--gallery", required=True)
    search.add_argument("-k", type=COUNT, default=5, help="identities per image")
    remove = actions.add_parser("remove", help="drop identities (and their vectors) from a gallery")
    remove.add_argument("identity", nargs="+")
    remove.add_argument("--gallery", required=True)
    info = actions.add_parser("info", help="model, embedding size, identities, vectors, threshold")
    info.add_argument("--gallery", required=True)
    listing = actions.add_parser("list", help="identities and their vector counts")
    listing.add_argument("--gallery", required=True)
    for parser, func, what in ((enroll, _cmd_enroll, "what was enrolled"), (search, _cmd_search, "the matches"),
                               (remove, _cmd_remove, "what was removed"), (info, _cmd_info, "the summary"),
                               (listing, _cmd_list, "identities and counts")):
        add_json_option(parser, what)
        parser.set_defaults(func=func)


VERBS = {"gallery": _add}


def register(verbs: Verbs, names: Sequence[str] | None = None) -> None:
    """Add the ``gallery`` verb."""
    add_verbs(verbs, VERBS, names)
