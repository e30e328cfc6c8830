"""Readers of re-identification and face datasets on disk, real or written by the synthetic world.

* Market-1501 and DukeMTMC-reID: ``bounding_box_train``, ``bounding_box_test`` and ``query``
  folders of crops named ``0002_c1s1_000451_03.jpg`` (Market) or ``0001_c2_f0046182.jpg`` (Duke).
  pid -1 marks junk detections and is skipped; pid 0 (``0000``) marks distractors, kept in the gallery
  only (as Market-1501's own evaluation and torchreid treat them).
* SYSU-MM01 (RGB-IR): ``cam{n}/{pid:04d}/{k:04d}.jpg`` with ``exp/train_id.txt`` and
  ``exp/test_id.txt``; cam3 and cam6 are the IR cameras. All-search protocol: IR images of the
  test identities are the queries, RGB images of them the gallery (evaluation code samples the
  single-shot gallery from it).
* Face folders: ``hr/{pid}/*.png`` and ``lr{size}/{pid}/*.png``.

Camera ids in records are 0-based (``c1`` is camid 0).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edgereid.errors import InputError
from edgereid.fileio import read_bounded_text

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
SYSU_IR_CAMERAS = (3, 6)  # camera folders of SYSU-MM01 that hold IR images

_MARKET_NAME = re.compile(r"^(-?\d+)_c(\d+)(?:s\d+)?_", re.IGNORECASE)
_CAMERA_FOLDER = re.compile(r"^cam(\d+)$")
_RESOLUTION_FOLDER = re.compile(r"^(hr|lr\d+)$")
_MARKET_FOLDERS = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}


@dataclass(frozen=True)
class ImageRecord:
    """One labelled person image: identity, 0-based camera and modality ("rgb" or "ir")."""

    path: Path
    pid: int
    camid: int
    modality: str = "rgb"


@dataclass(frozen=True)
class ReidSplit:
    """The three image lists of a re-identification benchmark."""

    train: list[ImageRecord]
    query: list[ImageRecord]
    gallery: list[ImageRecord]


@dataclass(frozen=True)
class FaceRecord:
    """One face image: identity and resolution folder ("hr", "lr16", ...)."""

    path: Path
    pid: int
    resolution: str


def read_market1501(root: str | Path) -> ReidSplit:
    """Read a Market-1501 or DukeMTMC-reID folder (see the module text for the rules)."""
    root = Path(root)
    missing = [name for name in _MARKET_FOLDERS.values() if not (root / name).is_dir()]
    if missing:
        raise InputError(f"{root} is not a Market-1501-style dataset folder",
                         expected="folders " + ", ".join(_MARKET_FOLDERS.values()) + " inside it",
                         got="missing: " + ", ".join(missing),
                         fix="point to the folder that holds them (e.g. Market-1501-v15.09.15), or "
                             "write one with World.write_market1501")
    return ReidSplit(train=_read_market_folder(root / _MARKET_FOLDERS["train"], keep_distractors=False),
                     query=_read_market_folder(root / _MARKET_FOLDERS["query"], keep_distractors=False),
                     gallery=_read_market_folder(root / _MARKET_FOLDERS["gallery"], keep_distractors=True))


def _read_market_folder(folder: Path, keep_distractors: bool) -> list[ImageRecord]:
    records = []
    for path in _image_files(folder):
        match = _MARKET_NAME.match(path.name)
        if match is None:
            raise InputError(f"{path} is not named like a Market-1501 or DukeMTMC-reID image",
                             expected="PID_cCAMsSEQ_FRAME_BOX.jpg or PID_cCAM_fFRAME.jpg",
                             got=path.name, fix="move files that are not dataset crops elsewhere")
        pid, camera = int(match.group(1)), int(match.group(2))
        if pid < -1 or camera < 1:
            raise InputError(f"{path} has an impossible identity or camera",
                             expected="pid >= -1 and camera >= 1", got=f"pid {pid}, camera {camera}")
        if pid == -1 or (pid == 0 and not keep_distractors):
            continue
        records.append(ImageRecord(path=path, pid=pid, camid=camera - 1))
    return records


def read_sysu_like(root: str | Path, ir_cameras: tuple[int, ...] = SYSU_IR_CAMERAS) -> ReidSplit:
    """Read a SYSU-MM01-style folder; ``ir_cameras`` are the camera folder numbers holding IR.

    Training identities are those of ``exp/train_id.txt`` plus ``exp/val_id.txt`` when present
    (the usual 395 SYSU training identities); queries are the IR images of ``exp/test_id.txt``
    identities, the gallery their RGB images.
    """
    root = Path(root)
    cameras = _camera_folders(root)
    train_ids = set(read_id_list(root / "exp" / "train_id.txt"))
    if (root / "exp" / "val_id.txt").is_file():
        train_ids |= set(read_id_list(root / "exp" / "val_id.txt"))
    test_ids = set(read_id_list(root / "exp" / "test_id.txt"))
    train, query, gallery = [], [], []
    for number, folder in cameras.items():
        modality = "ir" if number in ir_cameras else "rgb"
        for pid, pid_folder in _identity_folders(folder):
            records = [ImageRecord(path=path, pid=pid, camid=number - 1, modality=modality)
                       for path in _image_files(pid_folder)]
            if pid in train_ids:
                train.extend(records)
            elif pid in test_ids:
                (query if modality == "ir" else gallery).extend(records)
    return ReidSplit(train=train, query=query, gallery=gallery)


def _camera_folders(root: Path) -> dict[int, Path]:
    """``cam{n}`` folders by number."""
    folders = {}
    if root.is_dir():
        for child in root.iterdir():
            match = _CAMERA_FOLDER.match(child.name)
            if match and child.is_dir():
                folders[int(match.group(1))] = child
    if not folders:
        raise InputError(f"{root} is not a SYSU-MM01-style dataset folder",
                         expected="camera folders cam1, cam2, ... and exp/train_id.txt, exp/test_id.txt",
                         got="no cam{n} folders", fix="point to the SYSU-MM01 folder, or write one "
                                                     "with World.write_sysu_like")
    return dict(sorted(folders.items()))


# the largest identity list read (SYSU-MM01's are a few kilobytes)
MAX_ID_LIST_BYTES = 16 << 20


def read_id_list(path: Path) -> list[int]:
    """Identity numbers of a split file (SYSU-MM01's exp/*_id.txt, LLCM's idx/test_id.txt, PKU-Sketch's style
    lists): integers separated by commas or whitespace, optionally in brackets."""
    if not path.is_file():
        raise InputError(f"missing split file {path}", expected="comma-separated identity numbers",
                         fix="the dataset ships it; synthetic data writes it too")
    text = read_bounded_text(path, MAX_ID_LIST_BYTES, "split file").strip().strip("[]")
    try:
        return [int(token) for token in re.split(r"[,\s]+", text) if token]
    except ValueError as exc:
        raise InputError(f"{path} is not a list of identity numbers", got=text[:80],
                         expected="e.g. 1,2,4,5,7") from exc


def _identity_folders(folder: Path) -> list[tuple[int, Path]]:
    """Subfolders named by an identity number, sorted by it."""
    return sorted((int(child.name), child) for child in folder.iterdir()
                  if child.is_dir() and child.name.isdigit())


def read_face_folder(root: str | Path) -> dict[str, list[FaceRecord]]:
    """Face images by resolution folder: ``{"hr": [...], "lr16": [...]}``."""
    root = Path(root)
    faces: dict[str, list[FaceRecord]] = {}
    if root.is_dir():
        for child in sorted(root.iterdir()):
            if child.is_dir() and _RESOLUTION_FOLDER.match(child.name):
                faces[child.name] = [FaceRecord(path=path, pid=pid, resolution=child.name)
                                     for pid, pid_folder in _identity_folders(child)
                                     for path in _image_files(pid_folder)]
    if not faces:
        raise InputError(f"{root} is not a face folder",
                         expected="subfolders hr/ and lr{size}/ holding one folder per identity",
                         fix="point to the right folder, or write one with World.write_faces")
    return faces


def _image_files(folder: Path) -> list[Path]:
    """Image files directly in ``folder``, sorted by name; other files (Thumbs.db) are ignored."""
    return sorted(path for path in folder.iterdir()
                  if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES)


def load_image(path: str | Path) -> np.ndarray:
    """Read an image file as BGR uint8 ``[H, W, 3]``."""
    path = Path(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise InputError(f"cannot read {path}", got=f"{type(exc).__name__}: {exc}",
                         fix="check that the file exists and is readable") from exc
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise InputError(f"{path} is not a readable image", expected="a JPEG, PNG or BMP file",
                         got=f"{data.size} bytes OpenCV cannot decode")
    return image

