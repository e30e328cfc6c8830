"""The gallery file: one ``.npz`` (no pickles) with the vectors, labels, card, threshold, format version
and a SHA-256 over all of them, written atomically so a crash mid-save leaves the previous file intact
and a damaged file is detected instead of silently mis-matching."""

from __future__ import annotations

import hashlib
import io
import math
import zipfile
from pathlib import Path

import numpy as np

from edgereid.card import ModelCard
from edgereid.errors import GalleryError
from edgereid.fileio import atomic_write_bytes, sweep_stale_temps

FORMAT_VERSION = 1

REQUIRED_KEYS = ("vectors", "labels", "card", "threshold", "format_version", "checksum")
# Budgets of a gallery file's entries: 8 GiB uncompressed (a million 512-d vectors are 2 GiB), and the
# inflation a compressed entry may have (edgereid stores entries uncompressed).
MAX_ENTRY_BYTES = 8 << 30
MAX_INFLATION = 20
# How far from unit length a stored vector may be (float32 rounding is ~1e-7).
UNIT_TOLERANCE = 1e-3


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


def check_archive(path: Path) -> None:
    """Bound what reading ``path`` will inflate, before inflating anything: the known entries only, each at
    most :data:`MAX_ENTRY_BYTES` and at most :data:`MAX_INFLATION` times its compressed size (``np.savez``
    stores entries uncompressed, so a legitimate gallery of any size has ratio 1)."""
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except FileNotFoundError:
        raise GalleryError(f"no gallery file at {path}", fix="check the path, or create a "
                           "Gallery, enroll and save() it") from None
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise damaged(path, f"{type(exc).__name__}: {str(exc)[:120]}") from exc
    names = sorted(entry.filename for entry in entries)
    if names != sorted(f"{key}.npy" for key in REQUIRED_KEYS):
        raise damaged(path, f"unexpected entries {names[:10]}")
    for entry in entries:
        ratio = entry.file_size / max(entry.compress_size, 1)
        if entry.file_size > MAX_ENTRY_BYTES or (entry.compress_type != zipfile.ZIP_STORED and ratio > MAX_INFLATION):
            raise GalleryError(f"gallery file {path} would inflate beyond its budget",
                               expected=f"entries up to {MAX_ENTRY_BYTES} bytes, compressed at most "
                                        f"{MAX_INFLATION}:1", got=f"'{entry.filename}' {entry.compress_size} -> "
                                                                  f"{entry.file_size} bytes",
                               fix="this is not a file edgereid wrote; recreate the gallery")


def read_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every array of a gallery file, within the budgets of :func:`check_archive`, with damage reported as
    GalleryError."""
    check_archive(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
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
    sweep_stale_temps(path)
    arrays = read_arrays(path)
    check_integrity(arrays, path)
    card = ModelCard.from_json(str(arrays["card"]))
    vectors, labels = arrays["vectors"], arrays["labels"]
    if vectors.shape != (len(labels), card.embedding_dim) or labels.ndim != 1:
        raise damaged(path, f"vectors {vectors.shape} and labels {labels.shape} disagree")
    check_contents(path, vectors, labels, arrays["threshold"])
    threshold = float(arrays["threshold"])
    return card, vectors, labels, None if math.isnan(threshold) else threshold


def check_contents(path: Path, vectors: np.ndarray, labels: np.ndarray, threshold: np.ndarray) -> None:
    """A file that passes its checksum must still make sense: float32 finite unit rows, labels that are
    non-empty strings, a threshold that is a number or NaN (none). A file edited and re-checksummed fails
    here instead of matching with cosines above 1 or never matching a NaN row."""
    def nonsense(detail: str) -> GalleryError:
        return GalleryError(f"gallery file {path} holds values no gallery can hold: {detail}",
                            fix="recreate the gallery from embeddings (Gallery.enroll) and save it")

    if vectors.dtype != np.float32 or labels.dtype.kind != "U" or np.asarray(threshold).dtype.kind != "f":
        raise nonsense(f"dtypes vectors {vectors.dtype}, labels {labels.dtype}, threshold {np.asarray(threshold).dtype}")
    bad = np.flatnonzero(~np.isfinite(vectors).all(axis=1) | (np.abs(np.linalg.norm(vectors, axis=1) - 1)
                                                              > UNIT_TOLERANCE))
    if bad.size:
        raise nonsense(f"{bad.size} rows are not finite unit vectors (first: row {int(bad[0])})")
    if labels.size and (np.char.str_len(labels) == 0).any():
        raise nonsense("empty identity labels")
    if np.isinf(threshold):
        raise nonsense("an infinite threshold")
