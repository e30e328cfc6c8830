"""Readers of the real cross-modal person re-identification and text-to-person benchmarks, in their official layouts.

* **SYSU-MM01** (RGB-IR): ``cam{1..6}/{pid:04d}/{k:04d}.jpg``, ``exp/{train,val,test}_id.txt``; cameras 3 and 6 are
  IR. Test protocol (the dataset's released evaluation, followed by AGW and later work): every IR image of the test
  identities is a query; the gallery holds, per trial, one random image (single-shot) of every test identity from
  every RGB camera: cameras 1, 2, 4 and 5 (``all`` search) or 1 and 2 (``indoor`` search); 10 trials.
* **RegDB** (visible-thermal): ``Visible/{pid}/*.bmp``, ``Thermal/{pid}/*.bmp`` and the split lists
  ``idx/{train,test}_{visible,thermal}_{trial}.txt`` (10 trials), one ``relative/path label`` per line; queries are
  one modality's test images and the gallery the other's.
* **Text-to-person** (CUHK-PEDES ``reid_raw.json``, ICFG-PEDES ``ICFG-PEDES.json``, RSTPReid
  ``data_captions.json``): a JSON list of images, each with ``id``, ``split``, ``captions`` and ``file_path``
  (``img_path`` in RSTPReid), relative to ``imgs/``.

Every list file is size-checked before it is read. Evaluation protocols are in
:mod:`edgereid.eval.crossmodal_protocols`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgereid.data.datasets import SYSU_IR_CAMERAS, ImageRecord, ReidSplit, read_sysu_like
from edgereid.errors import InputError
from edgereid.fileio import read_bounded_text

MAX_LIST_BYTES = 256 << 20  # the largest split list or caption JSON read (CUHK-PEDES' is about 30 MB)
SYSU_SEARCH_CAMERAS = {"all": (1, 2, 4, 5), "indoor": (1, 2)}
REGDB_TRIALS = tuple(range(1, 11))


def read_sysu_mm01(root: str | Path) -> ReidSplit:
    """SYSU-MM01: training images of the train (+ val) identities, all IR test images as queries, and every RGB
    test image as the gallery pool that :func:`sysu_gallery` samples from."""
    return read_sysu_like(root, SYSU_IR_CAMERAS)


def sysu_gallery(pool: list[ImageRecord], mode: str = "all", trial: int = 0, shots: int = 1) -> list[ImageRecord]:
    """One trial's gallery: ``shots`` random images (1: single-shot) of every identity from every camera of
    ``mode``'s search (``all`` or ``indoor``), drawn with the trial number as the seed."""
    if mode not in SYSU_SEARCH_CAMERAS:
        raise InputError("unknown SYSU-MM01 search mode", expected=" or ".join(SYSU_SEARCH_CAMERAS), got=repr(mode))
    rng = np.random.default_rng(trial)
    cameras = {number - 1 for number in SYSU_SEARCH_CAMERAS[mode]}  # records hold 0-based cameras
    groups: dict[tuple[int, int], list[ImageRecord]] = {}
    for record in pool:
        if record.camid in cameras and record.modality == "rgb":
            groups.setdefault((record.pid, record.camid), []).append(record)
    gallery = []
    for key in sorted(groups):
        images = sorted(groups[key], key=lambda r: r.path.name)
        picks = rng.choice(len(images), min(shots, len(images)), replace=False)
        gallery.extend(images[i] for i in sorted(picks))
    return gallery


def sysu_queries(split: ReidSplit, mode: str = "all") -> list[ImageRecord]:
    """The IR queries: every test IR image (both search modes use all of them)."""
    if mode not in SYSU_SEARCH_CAMERAS:
        raise InputError("unknown SYSU-MM01 search mode", expected=" or ".join(SYSU_SEARCH_CAMERAS), got=repr(mode))
    return [record for record in split.query if record.modality == "ir"]


_REGDB_LINE = re.compile(r"^(\S+)\s+(-?\d+)$")


def _regdb_list(root: Path, name: str, modality: str) -> list[ImageRecord]:
    records = []
    text = read_bounded_text(root / "idx" / name, MAX_LIST_BYTES, "RegDB split list")
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        match = _REGDB_LINE.match(line.strip())
        if match is None:
            raise InputError(f"{root / 'idx' / name} line {number} is not 'path label'", got=line[:80],
                             expected="e.g. Visible/1/female_back_v_06216_1.bmp 0")
        path = (root / match.group(1)).resolve()
        if root.resolve() not in path.parents:
            raise InputError(f"{root / 'idx' / name} line {number} points outside the dataset", got=match.group(1))
        records.append(ImageRecord(path=path, pid=int(match.group(2)), camid=0 if modality == "rgb" else 1,
                                   modality=modality))
    return records


def read_regdb(root: str | Path, trial: int = 1, query: str = "visible") -> ReidSplit:
    """RegDB's ``trial`` (1-10): training images of both modalities; queries the test images of ``query``
    (``visible`` or ``thermal``), the gallery those of the other modality."""
    root = Path(root)
    if trial not in REGDB_TRIALS or query not in ("visible", "thermal"):
        raise InputError("RegDB has trials 1-10 and visible or thermal queries", got=f"trial {trial}, query {query!r}")
    lists = {(part, kind): _regdb_list(root, f"{part}_{kind}_{trial}.txt", "rgb" if kind == "visible" else "ir")
             for part in ("train", "test") for kind in ("visible", "thermal")}
    other = "thermal" if query == "visible" else "visible"
    return ReidSplit(train=lists["train", "visible"] + lists["train", "thermal"], query=lists["test", query],
                     gallery=lists["test", other])


@dataclass(frozen=True)
class CaptionedImage:
    """One image of a text-to-person set with its identity and captions."""

    path: Path
    pid: int
    captions: tuple[str, ...]
    split: str


def read_text_person(json_path: str | Path, images: str | Path | None = None) -> list[CaptionedImage]:
    """The images of a CUHK-PEDES, ICFG-PEDES or RSTPReid annotation file (``images``: the folder the paths are
    relative to, by default ``imgs/`` beside the file)."""
    json_path = Path(json_path)
    root = Path(images) if images else json_path.parent / "imgs"
    try:
        entries = json.loads(read_bounded_text(json_path, MAX_LIST_BYTES, "caption file"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{json_path} is not JSON", got=str(exc)[:120]) from exc
    if not isinstance(entries, list):
        raise InputError(f"{json_path} is not a list of images", expected="a JSON list", got=type(entries).__name__)
    out = []
    for number, entry in enumerate(entries):
        relative = entry.get("file_path", entry.get("img_path")) if isinstance(entry, dict) else None
        captions = entry.get("captions") if isinstance(entry, dict) else None
        if not isinstance(relative, str) or not isinstance(captions, list) or not isinstance(entry.get("id"), int) \
                or entry.get("split") not in ("train", "val", "test"):
            raise InputError(f"{json_path} entry {number} is not an annotated image", got=str(entry)[:120],
                             expected='{"id": int, "split": train|val|test, "captions": [...], "file_path": "..."}')
        out.append(CaptionedImage(root / relative, entry["id"], tuple(str(c) for c in captions), entry["split"]))
    return out


def text_person_test(images: list[CaptionedImage], split: str = "test") -> tuple[list[tuple[str, int]],
                                                                                  list[CaptionedImage]]:
    """The text-to-image protocol: every caption of ``split`` is a query ``(caption, pid)``, every image of it
    the gallery."""
    gallery = [image for image in images if image.split == split]
    return [(caption, image.pid) for image in gallery for caption in image.captions], gallery
