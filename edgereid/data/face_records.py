"""Readers of insightface's face training and verification files, without mxnet and without unpickling code.

* **RecordIO** (``train.rec`` + ``train.idx``, how MS1MV2/MS1MV3/Glint360K/CASIA-WebFace ship for arcface_torch):
  the ``.idx`` file maps record keys to byte offsets (``key<TAB>offset`` lines); each record is the magic
  ``0xced7230a``, a 32-bit length word (the low 29 bits are the length, the high 3 a continuation flag, 0 for the
  whole records these files hold), the payload and padding to 4 bytes. A payload starts with mxnet's image record
  header (``uint32 flag, float32 label, uint64 id, uint64 id2``); when ``flag`` > 0, ``flag`` float32 labels follow
  it. The encoded image (JPEG) is the rest. Record 0 of the insightface sets is a header whose labels give the
  range of image keys, ``[1, first identity-header key)``.
* **Verification sets** (``lfw.bin``, ``cfp_fp.bin``, ``agedb_30.bin``, ``calfw.bin``, ``cplfw.bin``): a pickle of
  ``(list of encoded images, list of same-person flags)``, two images per pair. They are pickles, so they are read
  with an unpickler that resolves **no global at all**: lists, tuples, bytes and booleans need none, and anything
  else (a NumPy array, a class, a function) is refused. The released files were written by Python 2 (images as
  byte strings, read as ``bytes``) or with protocol 3+; a Python 3 protocol-2 file needs ``_codecs.encode`` for
  its bytes and is refused with the fix (re-save with protocol 4). Nothing else in edgereid unpickles.

Every read is bounded: record lengths against the file, the pickle's size before it is read.
"""

from __future__ import annotations

import io
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edgereid.errors import InputError
from edgereid.fileio import read_bounded_text

RECORD_MAGIC = 0xCED7230A
IMAGE_HEADER = struct.Struct("<IfQQ")
MAX_VERIFICATION_BYTES = 1 << 30  # the largest .bin read (LFW's is about 60 MB)
MAX_RECORD_BYTES = 64 << 20


@dataclass(frozen=True)
class FaceRecord:
    """One RecordIO record: its labels (identity first) and its encoded image."""

    key: int
    labels: tuple[float, ...]
    image: bytes

    def decode(self) -> np.ndarray:
        """The image as BGR uint8 (refused if it does not decode)."""
        pixels = cv2.imdecode(np.frombuffer(self.image, np.uint8), cv2.IMREAD_COLOR)
        if pixels is None:
            raise InputError(f"record {self.key} does not hold a decodable image", expected="JPEG or PNG bytes")
        return pixels


class RecordFile:
    """Random access to an insightface ``.rec`` through its ``.idx``."""

    def __init__(self, rec: str | Path, idx: str | Path | None = None) -> None:
        self.rec = Path(rec)
        idx = Path(idx) if idx else self.rec.with_suffix(".idx")
        for path in (self.rec, idx):
            if not path.is_file():
                raise InputError(f"missing {path}", expected="train.rec with its train.idx beside it",
                                 fix="point to the unpacked insightface dataset folder")
        self.size = self.rec.stat().st_size
        self.offsets: dict[int, int] = {}
        for number, line in enumerate(read_bounded_text(idx, 256 << 20, "RecordIO index").splitlines(), 1):
            parts = line.split("\t")
            if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
                raise InputError(f"{idx} line {number} is not 'key<TAB>offset'", got=line[:60])
            key, offset = int(parts[0]), int(parts[1])
            if offset + 8 > self.size:
                raise InputError(f"{idx} line {number} points past the end of {self.rec.name}", got=str(offset))
            self.offsets[key] = offset

    def __len__(self) -> int:
        return len(self.offsets)

    def _payload(self, key: int, head: int | None = None) -> bytes:
        """Record ``key``'s payload, checked; only its first ``head`` bytes when ``head`` is given."""
        if key not in self.offsets:
            raise InputError(f"{self.rec.name} has no record {key}", got=str(key))
        with open(self.rec, "rb") as handle:
            handle.seek(self.offsets[key])
            magic, word = struct.unpack("<II", handle.read(8))
            length, continued = word & ((1 << 29) - 1), word >> 29
            if magic != RECORD_MAGIC or continued != 0:
                raise InputError(f"{self.rec.name} record {key} is not a whole RecordIO record",
                                 expected=f"magic {RECORD_MAGIC:#x}, flag 0", got=f"magic {magic:#x}, flag {continued}")
            if length < IMAGE_HEADER.size or length > MAX_RECORD_BYTES or self.offsets[key] + 8 + length > self.size:
                raise InputError(f"{self.rec.name} record {key} has an impossible length", got=str(length))
            return handle.read(length if head is None else min(head, length))

    def _parse(self, key: int, payload: bytes) -> FaceRecord:
        flag, label, _, _ = IMAGE_HEADER.unpack_from(payload)
        body = payload[IMAGE_HEADER.size:]
        if flag > 0:
            if 4 * flag > len(body):
                raise InputError(f"{self.rec.name} record {key} declares more labels than it holds", got=str(flag))
            labels = struct.unpack_from(f"<{flag}f", body)
            return FaceRecord(key, tuple(labels), body[4 * flag:])
        return FaceRecord(key, (label,), body)

    def read(self, key: int) -> FaceRecord:
        """The record stored under ``key``."""
        return self._parse(key, self._payload(key))

    def identity(self, key: int) -> int:
        """The identity label of image record ``key`` (its first label), reading only the record's header: a
        pass over MS1MV2's 5.8 M records reads 190 MB instead of the whole file."""
        payload = self._payload(key, head=IMAGE_HEADER.size + 4)
        flag, label, _, _ = IMAGE_HEADER.unpack_from(payload)
        if flag > 0:  # labels follow the header; the identity is the first
            if len(payload) < IMAGE_HEADER.size + 4:
                raise InputError(f"{self.rec.name} record {key} declares labels it does not hold", got=str(flag))
            (label,) = struct.unpack_from("<f", payload, IMAGE_HEADER.size)
        return int(label)

    def image_keys(self) -> range:
        """The keys of the image records: from the header record 0 when there is one, else every key."""
        if 0 in self.offsets:
            header = self.read(0)
            if len(header.labels) >= 2 and header.labels[0] > 1:
                return range(1, int(header.labels[0]))
        return range(min(self.offsets), max(self.offsets) + 1)


class _NoGlobals(pickle.Unpickler):
    """An unpickler that builds only what needs no global (lists, tuples, dicts, bytes, str, numbers, bools)."""

    def find_class(self, module: str, name: str):
        raise pickle.UnpicklingError(f"refused: the file asks for {module}.{name}")


@dataclass(frozen=True)
class VerificationSet:
    """Pairs of encoded faces and whether each pair shows one person."""

    name: str
    images: list[bytes]
    same: np.ndarray

    def decode(self) -> list[np.ndarray]:
        out = []
        for i, data in enumerate(self.images):
            pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
            if pixels is None:
                raise InputError(f"{self.name}: image {i} does not decode", expected="JPEG or PNG bytes")
            out.append(pixels)
        return out


def read_verification_bin(path: str | Path) -> VerificationSet:
    """An insightface verification ``.bin`` (see the module text), read without resolving any global."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"verification set not found: {path}", fix="point to e.g. faces_emore/lfw.bin")
    if path.stat().st_size > MAX_VERIFICATION_BYTES:
        raise InputError(f"{path} is too large for a verification set",
                         expected=f"at most {MAX_VERIFICATION_BYTES} bytes")
    try:
        loaded = _NoGlobals(io.BytesIO(path.read_bytes()), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
        raise InputError(f"{path} is not a verification set this reader accepts", got=str(exc)[:200],
                         expected="a pickle of (list of image bytes, list of booleans), no other objects",
                         fix="re-save the pairs as plain lists (nothing here unpickles classes or arrays)") from exc
    if not (isinstance(loaded, (tuple, list)) and len(loaded) == 2):
        raise InputError(f"{path} does not hold (images, same-person flags)", got=type(loaded).__name__)
    images, same = loaded
    if not (isinstance(images, list) and all(isinstance(i, bytes) for i in images)
            and isinstance(same, list) and all(isinstance(s, bool) for s in same) and len(images) == 2 * len(same)):
        raise InputError(f"{path} does not hold two encoded images per same-person flag",
                         got=f"{len(images) if isinstance(images, list) else '?'} images, "
                             f"{len(same) if isinstance(same, list) else '?'} flags")
    return VerificationSet(path.stem, images, np.array(same, bool))
