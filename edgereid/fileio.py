"""Crash-safe file writing: a reader sees the old file or the new one, never half of one.

The temporary file of a write is named ``.<target>.<writer pid>.<random>.tmp`` beside the target. A writer
killed mid-write (SIGKILL runs no cleanup) leaves it behind; the next write of the same target, or a reader
that calls :func:`sweep_stale_temps`, removes those of writers that no longer run, never a live one's."""

from __future__ import annotations

import glob
import os
import tempfile
from pathlib import Path

from edgereid.errors import EdgeReidError, InputError, OutputPathError

# The image files crop folders, galleries and calibration sets are read from.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder, fsync, then rename."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        sweep_stale_temps(target)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise OutputPathError(f"cannot write {target}", got=exc.strerror or str(exc),
                              fix="check that the folder exists, is a folder and is writable") from exc
    # mkstemp makes the file private; keep the mode of the file being replaced, else rw-r--r--.
    os.chmod(tmp_name, target.stat().st_mode & 0o777 if target.exists() else 0o644)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return target


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def sweep_stale_temps(target: str | Path) -> int:
    """Remove the temporary files of ``target`` whose writer process is gone; returns how many."""
    target = Path(target)
    prefix = f".{target.name}."
    removed = 0
    if not target.parent.is_dir():
        return 0
    for candidate in target.parent.glob(f"{glob.escape(prefix)}*.tmp"):
        pid = candidate.name[len(prefix):].split(".", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _process_alive(int(pid)):
            candidate.unlink(missing_ok=True)
            removed += 1
    return removed


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Text form of :func:`atomic_write_bytes` (UTF-8)."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def replace_dir(staged: str | Path, target: str | Path) -> Path:
    """Move a fully written folder ``staged`` to ``target``; an existing ``target`` is kept aside
    until the move succeeded, so a failure leaves the previous folder in place."""
    import shutil

    staged, target = Path(staged), Path(target)
    old = target.with_name(f".{target.name}.old")
    if old.exists() and not target.exists():  # an earlier move died half-way: the old copy is the good one
        os.replace(old, target)
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        os.replace(target, old)
    try:
        os.replace(staged, target)
    except BaseException:
        if old.exists():
            os.replace(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)
    return target


def read_bounded_bytes(path: str | Path, limit: int, what: str, error: type[EdgeReidError] = InputError) -> bytes:
    """The bytes of ``path``, after checking that it is a file of at most ``limit`` bytes (a reader never loads
    more than it expects); ``error`` is raised, naming ``what`` the file should have been."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{what} not found: {path}", fix="check the path")
    size = path.stat().st_size
    if size > limit:
        raise error(f"{path} is too large for a {what}", expected=f"at most {limit} bytes", got=f"{size} bytes")
    return path.read_bytes()


def read_bounded_text(path: str | Path, limit: int, what: str, error: type[EdgeReidError] = InputError) -> str:
    """The UTF-8 text of ``path``, bounded as :func:`read_bounded_bytes`."""
    try:
        return read_bounded_bytes(path, limit, what, error).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{path} is not UTF-8 text", got=str(exc)[:120], fix="save the file as UTF-8") from exc


def read_bounded_image(path: str | Path, limit: int, what: str, grey: bool = False):
    """A BGR (or ``grey``) uint8 image decoded from ``path``, bounded as :func:`read_bounded_bytes`; an
    InputError names a file that does not decode."""
    import cv2
    import numpy as np

    data = np.frombuffer(read_bounded_bytes(path, limit, what), np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE if grey else cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise InputError(f"cannot decode {path}", expected=f"a JPEG or PNG {what}", fix="remove or replace the file")
    return image
