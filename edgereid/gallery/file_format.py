"""The gallery file: one ``.npz`` (no pickles) with the vectors, labels, card, threshold, format version
and a SHA-256 over all of them, written atomically so a crash mid-save leaves the previous file intact
and a damaged file is detected instead of silently mis-matching."""

from __future__ import annotations

import hashlib
import io
import math
from pathlib import Path

import numpy as np

from edgereid.card import ModelCard
from edgereid.errors import GalleryError
from edgereid.fileio import atomic_write_bytes

FORMAT_VERSION = 1

REQUIRED_KEYS = ("vectors", "labels", "card", "threshold", "format_version", "checksum")


def digest(arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 over every array's name, dtype, shape and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def damaged(path: Path, detail: str) -> GalleryError:
    return GalleryError(
        f"gallery file {path} is damaged (truncated or corrupted): {detail}",
        fix="restore the previous good copy of the file (saves are atomic, so a copy made before "
            "the damage is intact), or create a new Gallery, re-enroll the identities and save it")


def read_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every array of a gallery file, with damage reported as GalleryError."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise GalleryError(f"no gallery file at {path}", fix="check the path, or create a "
                           "Gallery, enroll and save() it") from None
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}
    except Exception as exc:  # zipfile, zlib and NumPy raise many types for a broken archive
        raise damaged(path, f"{type(exc).__name__}: {exc}") from exc


def check_integrity(arrays: dict[str, np.ndarray], path: Path) -> None:
    missing = [key for key in REQUIRED_KEYS if key not in arrays]
    if missing:
        raise damaged(path, f"entries {missing} are missing")
    payload = {key: value for key, value in arrays.items() if key != "checksum"}
    if digest(payload) != str(arrays["checksum"]):
        raise damaged(path, "the checksum does not match the contents")
    if int(arrays["format_version"]) > FORMAT_VERSION:
        raise GalleryError(f"gallery file {path} was written by a newer edgereid",
                           expected=f"format version <= {FORMAT_VERSION}",
                           got=str(int(arrays["format_version"])), fix="upgrade edgereid")


def write_gallery_file(path: str | Path, vectors: np.ndarray, labels: np.ndarray, card: ModelCard,
                       threshold: float | None) -> Path:
    """Write a gallery atomically to ``path``."""
    arrays = {
        "vectors": vectors,
        "labels": labels,
        "card": np.array(card.to_json()),
        "threshold": np.array(np.nan if threshold is None else threshold),
        "format_version": np.array(FORMAT_VERSION),
    }
    arrays["checksum"] = np.array(digest(arrays))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return atomic_write_bytes(path, buffer.getvalue())


def read_gallery_file(path: Path) -> tuple[ModelCard, np.ndarray, np.ndarray, float | None]:
    """``(card, vectors [N, D], labels [N], threshold)`` of a file written by :func:`write_gallery_file`,
    checked whole before anything is used."""
    arrays = read_arrays(path)
    check_integrity(arrays, path)
    card = ModelCard.from_json(str(arrays["card"]))
    vectors, labels = arrays["vectors"], arrays["labels"]
    if vectors.shape != (len(labels), card.embedding_dim) or labels.ndim != 1:
        raise damaged(path, f"vectors {vectors.shape} and labels {labels.shape} disagree")
    threshold = float(arrays["threshold"])
    return card, vectors, labels, None if math.isnan(threshold) else threshold
