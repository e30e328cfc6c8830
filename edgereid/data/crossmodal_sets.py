"""Readers of the real cross-modal person re-identification and text-to-person benchmarks, in their official layouts.

* **SYSU-MM01** (RGB-IR): ``cam{1..6}/{pid:04d}/{k:04d}.jpg``, ``exp/{train,val,test}_id.txt``; cameras 3 and 6 are
  IR. Test protocol (the dataset's released evaluation, followed by AGW and later work): every IR image of the test
  identities is a query; the gallery holds, per trial, one random image (single-shot) of every test identity from
  every RGB camera: cameras 1, 2, 4 and 5 (``all`` search) or 1 and 2 (``indoor`` search); 10 trials.
* **RegDB** (visible-thermal): ``Visible/{pid}/*.bmp``, ``Thermal/{pid}/*.bmp`` and the split lists
  ``idx/{train,test}_{visible,thermal}_{trial}.txt`` (10 trials), one ``relative/path label`` per line; queries are
  one modality's test images and the gallery the other's.
* **LLCM** (visible / near-infrared, low light): ``test_vis/cam{1..9}/{pid:04d}/*.jpg``,
  ``test_nir/cam{1,2,4..9}/{pid:04d}/*.jpg``, ``idx/test_id.txt`` (comma-separated identities) and the training lists
  ``idx/train_vis.txt`` / ``idx/train_nir.txt`` (``path label`` lines); queries are every test image of one
  modality, the gallery one random image per identity and camera of the other (10 trials), as the release's
  data manager draws them.
* **PKU-Sketch**: ``sketch/{pid}.jpg`` (one per identity), ``photo/{pid}_{camera}_{frame}.jpg`` (two per identity)
  and ``styleAnnotation/{style}_{count}.txt`` (the identities drawn in each of five styles); each trial holds out
  50 identities, per style as the split script distributed with the benchmark code does (11, 5, 20, 8 and 6 of
  styles a-e); queries are their sketches, the gallery their photos.
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

from edgereid.data.datasets import SYSU_IR_CAMERAS, ImageRecord, ReidSplit, read_id_list, read_sysu_like
from edgereid.errors import InputError
from edgereid.fileio import read_bounded_text

MAX_LIST_BYTES = 256 << 20  # the largest split list or caption JSON read (CUHK-PEDES' is about 30 MB)
SYSU_SEARCH_CAMERAS = {"all": (1, 2, 4, 5), "indoor": (1, 2)}
REGDB_TRIALS = tuple(range(1, 11))


def read_sysu_mm01(root: str | Path) -> ReidSplit:
    """SYSU-MM01: training images of the train (+ val) identities, all IR test images as queries, and every RGB
    test image as the gallery pool that :func:`sysu_gallery` samples from."""
    return read_sysu_like(root, SYSU_IR_CAMERAS)


def _search_cameras(mode: str) -> tuple[int, ...]:
    """The RGB camera numbers of a SYSU-MM01 search mode."""
    if mode not in SYSU_SEARCH_CAMERAS:
        raise InputError("unknown SYSU-MM01 search mode", expected=" or ".join(SYSU_SEARCH_CAMERAS), got=repr(mode))
    return SYSU_SEARCH_CAMERAS[mode]


def sysu_gallery(pool: list[ImageRecord], mode: str = "all", trial: int = 0, shots: int = 1) -> list[ImageRecord]:
    """One trial's gallery: ``shots`` random images (1: single-shot) of every identity from every camera of
    ``mode``'s search (``all`` or ``indoor``), drawn with the trial number as the seed."""
    cameras = {number - 1 for number in _search_cameras(mode)}  # records hold 0-based cameras
    return single_shot([r for r in pool if r.camid in cameras and r.modality == "rgb"], trial, shots)


def single_shot(pool: list[ImageRecord], trial: int, shots: int = 1) -> list[ImageRecord]:
    """``shots`` random images of every (identity, camera) of ``pool``, drawn with the trial number as the seed."""
    rng = np.random.default_rng(trial)
    groups: dict[tuple[int, int], list[ImageRecord]] = {}
    for record in pool:
        groups.setdefault((record.pid, record.camid), []).append(record)
    gallery = []
    for key in sorted(groups):
        images = sorted(groups[key], key=lambda r: r.path.name)
        picks = rng.choice(len(images), min(shots, len(images)), replace=False)
        gallery.extend(images[i] for i in sorted(picks))
    return gallery


def sysu_queries(split: ReidSplit, mode: str = "all") -> list[ImageRecord]:
    """The IR queries: every test IR image (both search modes use all of them)."""
    _search_cameras(mode)
    return [record for record in split.query if record.modality == "ir"]


_REGDB_LINE = re.compile(r"^(\S+)\s+(-?\d+)$")


_CAMERA_IN_PATH = re.compile(r"cam(\d+)")


def _path_label_list(root: Path, name: str, modality: str) -> list[ImageRecord]:
    """The ``idx/name`` list of ``relative/path label`` lines (RegDB, LLCM); the camera from a ``cam{n}`` folder in
    the path, else 0 for visible and 1 for the other modality."""
    records, inside = [], root.resolve()
    text = read_bounded_text(root / "idx" / name, MAX_LIST_BYTES, "split list")
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        match = _REGDB_LINE.match(line.strip())
        if match is None:
            raise InputError(f"{root / 'idx' / name} line {number} is not 'path label'", got=line[:80],
                             expected="e.g. Visible/1/female_back_v_06216_1.bmp 0")
        path = (root / match.group(1)).resolve()
        if inside not in path.parents:
            raise InputError(f"{root / 'idx' / name} line {number} points outside the dataset", got=match.group(1))
        camera = _CAMERA_IN_PATH.search(match.group(1))
        records.append(ImageRecord(path=path, pid=int(match.group(2)), modality=modality,
                                   camid=int(camera.group(1)) - 1 if camera else 0 if modality == "rgb" else 1))
    return records


def read_regdb(root: str | Path, trial: int = 1, query: str = "visible") -> ReidSplit:
    """RegDB's ``trial`` (1-10): training images of both modalities; queries the test images of ``query``
    (``visible`` or ``thermal``), the gallery those of the other modality."""
    root = Path(root)
    if trial not in REGDB_TRIALS or query not in ("visible", "thermal"):
        raise InputError("RegDB has trials 1-10 and visible or thermal queries", got=f"trial {trial}, query {query!r}")
    lists = {(part, kind): _path_label_list(root, f"{part}_{kind}_{trial}.txt", "rgb" if kind == "visible" else "ir")
             for part in ("train", "test") for kind in ("visible", "thermal")}
    other = "thermal" if query == "visible" else "visible"
    return ReidSplit(train=lists["train", "visible"] + lists["train", "thermal"], query=lists["test", query],
                     gallery=lists["test", other])


LLCM_FOLDERS = {"vis": ("test_vis", "rgb"), "nir": ("test_nir", "ir")}


def read_llcm(root: str | Path, query: str = "vis", trial: int = 0) -> ReidSplit:
    """LLCM's test protocol for one trial: every test image of ``query`` (``vis`` or ``nir``) as a query, one random
    image per identity and camera of the other modality as the gallery; training from the two ``idx`` lists."""
    root = Path(root)
    if query not in LLCM_FOLDERS:
        raise InputError("LLCM queries are vis or nir", got=repr(query))
    test_ids = set(read_id_list(root / "idx" / "test_id.txt"))
    by_modality = {}
    for kind, (folder, modality) in LLCM_FOLDERS.items():
        cameras = sorted((int(p.name[3:]), p) for p in (root / folder).glob("cam*") if p.name[3:].isdigit())
        if not cameras:
            raise InputError(f"{root / folder} holds no cam{{n}} folders", fix="point to the LLCM folder, unchanged")
        by_modality[kind] = [ImageRecord(path=image, pid=int(pid_folder.name), camid=number - 1, modality=modality)
                             for number, camera in cameras for pid_folder in sorted(camera.iterdir())
                             if pid_folder.name.isdigit() and int(pid_folder.name) in test_ids
                             for image in sorted(pid_folder.iterdir()) if image.is_file()]
    other = "nir" if query == "vis" else "vis"
    train = _path_label_list(root, "train_vis.txt", "rgb") + _path_label_list(root, "train_nir.txt", "ir")
    return ReidSplit(train=train, query=by_modality[query], gallery=single_shot(by_modality[other], trial))


PKU_SKETCH_TEST_PER_STYLE = {"a": 11, "b": 5, "c": 20, "d": 8, "e": 6}  # 50 held-out identities per trial


def read_pku_sketch(root: str | Path, trial: int = 0) -> ReidSplit:
    """PKU-Sketch, one trial: the held-out identities' sketches as queries and their photos as the gallery, the
    other identities' sketches and photos for training (sketches are modality ``sketch``, camera -1)."""
    root = Path(root)
    styles = {}
    for path in sorted((root / "styleAnnotation").glob("*_*.txt")):
        styles[path.stem.split("_")[0]] = read_id_list(path)
    if not styles:
        raise InputError(f"{root} has no styleAnnotation/{{style}}_{{count}}.txt files",
                         fix="point to the PKUSketchRE-ID folder, unchanged")
    rng = np.random.default_rng(trial)
    held_out = set()
    for style, ids in sorted(styles.items()):
        count = PKU_SKETCH_TEST_PER_STYLE.get(style, round(len(ids) / 4))
        held_out |= set(rng.choice(sorted(ids), min(count, len(ids)), replace=False).tolist())
    sketches = [ImageRecord(path=p, pid=int(p.stem), camid=-1, modality="sketch")
                for p in sorted((root / "sketch").glob("*.jpg")) if p.stem.isdigit()]
    photos = []
    for path in sorted((root / "photo").glob("*.jpg")):
        parts = path.stem.split("_")
        if len(parts) != 3 or not all(part.isdigit() for part in parts):
            raise InputError(f"{path} is not named like a PKU-Sketch photo", expected="PID_CAMERA_FRAME.jpg",
                             got=path.name)
        photos.append(ImageRecord(path=path, pid=int(parts[0]), camid=int(parts[1]), modality="rgb"))
    return ReidSplit(train=[r for r in sketches + photos if r.pid not in held_out],
                     query=[r for r in sketches if r.pid in held_out],
                     gallery=[r for r in photos if r.pid in held_out])


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
