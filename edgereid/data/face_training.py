"""Face training sets for the face trainers (CoReFace, ArcFace, CCFace), chosen by ``data.source``:

* ``world`` (default): the synthetic world's renders (:func:`edgereid.data.face_sets.render_faces`);
* ``folder``: one folder per identity, images inside (CASIA-WebFace or MS1MV2 unpacked: ``root/<identity>/*.jpg``;
  identities numbered in the sorted order of their folder names);
* ``recordio``: insightface's ``train.rec`` + ``train.idx`` (MS1MV2/MS1MV3/Glint360K/CASIA as arcface_torch ships
  them), read directly (:class:`edgereid.data.face_records.RecordFile`), identities from the records' labels.

Real sets hold faces already aligned to the ArcFace template at their size (112 px), so their landmarks are that
template: the trainers' alignment onto a model's own template becomes a resize. Their images are decoded per
batch, ``workers`` at a time on threads (OpenCV's decoder releases the GIL), which does what DataLoader workers do
for the training loop without holding MS1MV2's 5.8 M faces in memory. Each image file is size-checked before it
is read.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from edgereid.errors import ConfigError, InputError
from edgereid.fileio import IMAGE_SUFFIXES, read_bounded_bytes
from edgereid.ops.geometry import FACE_TEMPLATE_112

FACE_SOURCES = ("world", "folder", "recordio")
MAX_FACE_FILE_BYTES = 8 << 20


@dataclass(frozen=True)
class FaceData:
    """Which faces a run trains on: ``per_identity`` renders of ``identities`` identities of world ``seed``, or
    the real set at ``path`` (``source: folder | recordio``; ``workers`` decoding threads)."""

    seed: int = 110
    identities: int = 300
    per_identity: int = 20
    source: str = "world"
    path: str = ""
    workers: int = 4

    def __post_init__(self) -> None:
        if self.source not in FACE_SOURCES:
            raise ConfigError("unknown data.source", expected=" | ".join(FACE_SOURCES), got=repr(self.source))
        if self.source != "world" and not self.path:
            raise ConfigError(f"data.source {self.source} needs data.path",
                              fix="set data.path to the identity folders or the folder holding train.rec")


class LazyFaceImages:
    """Aligned faces ``[N, S, S, 3]`` (uint8 BGR) decoded when indexed, like a read-only array: an integer gives
    one image, an index array a stacked batch (decoded by the thread pool)."""

    def __init__(self, load: Callable[[int], bytes], count: int, size: int, workers: int, where: str) -> None:
        self.load, self.count, self.size, self.where = load, count, size, where
        self.pool = ThreadPoolExecutor(max(1, workers), thread_name_prefix="face-decode")

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (self.count, self.size, self.size, 3)

    def __len__(self) -> int:
        return self.count

    def decode(self, index: int) -> np.ndarray:
        pixels = cv2.imdecode(np.frombuffer(self.load(int(index)), np.uint8), cv2.IMREAD_COLOR)
        if pixels is None or pixels.shape != (self.size, self.size, 3):
            raise InputError(f"face {index} of {self.where} is not a {self.size}x{self.size} colour image",
                             got="undecodable" if pixels is None else f"{pixels.shape[1]}x{pixels.shape[0]}",
                             fix="train on aligned faces of one size (insightface's sets are 112x112)")
        return pixels

    def __getitem__(self, index):
        if np.ndim(index) == 0:
            return self.decode(int(index))
        return np.stack(list(self.pool.map(self.decode, np.asarray(index).reshape(-1)))) if len(index) else \
            np.zeros((0, self.size, self.size, 3), np.uint8)


def aligned_landmarks(count: int, size: int) -> np.ndarray:
    """``[N, 5, 2]`` (a broadcast view): the ArcFace template at ``size`` px in the world's pixel-edge convention
    (the trainers' alignment subtracts the half pixel again), for faces that are already aligned."""
    return np.broadcast_to(FACE_TEMPLATE_112 * (size / 112.0) + 0.5, (count, 5, 2))


def _read_file(path: Path) -> bytes:
    return read_bounded_bytes(path, MAX_FACE_FILE_BYTES, "face image")


def identity_folder_faces(root: str | Path, workers: int = 4) -> tuple[LazyFaceImages, np.ndarray]:
    """The faces of an identity-per-folder tree and their identity numbers (folder order)."""
    root = Path(root)
    folders = sorted(child for child in root.iterdir() if child.is_dir()) if root.is_dir() else []
    paths, pids = [], []
    for number, folder in enumerate(folders):
        images = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        paths += images
        pids += [number] * len(images)
    if not paths:
        raise InputError(f"{root} holds no identity folders with images",
                         expected="root/<identity>/<image>.jpg (CASIA-WebFace or MS1MV2 unpacked)",
                         fix="point data.path at the folder holding one folder per identity")
    size = cv2.imdecode(np.frombuffer(_read_file(paths[0]), np.uint8), cv2.IMREAD_COLOR)
    if size is None:
        raise InputError(f"cannot decode {paths[0]}", expected="a JPEG or PNG face")
    return LazyFaceImages(lambda i: _read_file(paths[i]), len(paths), size.shape[0], workers, str(root)), \
        np.array(pids, np.int64)


def recordio_faces(root: str | Path, workers: int = 4) -> tuple[LazyFaceImages, np.ndarray]:
    """The image records of ``root/train.rec`` (or the ``.rec`` file given) and their identity labels."""
    from edgereid.data.face_records import RecordFile
    from edgereid.progress import progress

    root = Path(root)
    records = RecordFile(root / "train.rec" if root.is_dir() else root)
    keys = list(records.image_keys())
    if not keys:
        raise InputError(f"{records.rec} holds no image records")
    pids = np.array([records.identity(key) for key in progress(keys, desc="reading identity labels", unit="face")],
                    np.int64)
    first = records.read(keys[0]).decode()
    return LazyFaceImages(lambda i: records.read(keys[i]).image, len(keys), first.shape[0], workers,
                          str(records.rec)), pids
