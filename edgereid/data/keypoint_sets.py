"""Readers of the keypoint benchmarks of StableKeypoints (Hedlin et al., CVPR 2024), in the file layouts its
official code (``ubc-vision/StableKeypoints``, ``datasets/*.py``) reads. This module: CelebA / MAFL and
DeepFashion; Tai-Chi and Human3.6M are in :mod:`edgereid.data.keypoint_video_sets`. Metrics are in
:mod:`edgereid.eval.keypoint_metrics`.

Every reader returns a :class:`KeypointSet`: image paths, points [N, K, 2] as (x, y) in the pixels of the image
file, a visibility mask and each image's (width, height). Coordinates are kept as the annotation files write them,
with no half-pixel or 1-based shift: the official loaders divide them by the image size unchanged, so the origin
is the image's top-left corner and pixel i spans [i, i + 1). Every annotation file is size-checked before it is
read; nothing is unpickled.

* **CelebA / MAFL** (``datasets/celeba.py``, ``align=True``): landmarks from
  ``Anno/list_landmarks_align_celeba.txt`` (count line, header line, then ``000001.jpg 69 109 106 113 77 142 73
  152 108 154``: left eye, right eye, nose, left and right mouth corner), the split from ``MAFL/training.txt`` or
  ``MAFL/testing.txt`` (one image name per line). The official code reads PNG copies
  ``Img/img_align_celeba_png/NNNNNN.png``; the released JPEGs ``Img/img_align_celeba/NNNNNN.jpg`` or
  ``img_align_celeba/NNNNNN.jpg`` (with the landmark list beside them) are read as well. It does not crop: the
  whole 178 x 218 aligned face is resized to 512 x 512 and the landmarks divided by width and height.
* **DeepFashion** (``datasets/deepfashion.py``, from AutoLink; the in-shop subset of Lorenz et al.):
  ``data_{train,test}.csv`` (a header line, the image path relative to ``img/`` in the second column),
  ``data_{train,test}.json`` (a list, row for row with the CSV, of objects whose ``keypoints`` are [K, 2] (x, y)
  in pixels of the 256 x 256 image; the official code rolls them to (y, x) and divides by 256).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgereid.errors import InputError
from edgereid.fileio import read_bounded_image, read_bounded_text

MAX_LANDMARK_BYTES = 64 << 20  # CelebA's landmark list is about 12 MB
MAX_SPLIT_BYTES = 16 << 20
MAX_JSON_BYTES = 256 << 20
MAX_IMAGE_BYTES = 32 << 20
CELEBA_HEADER = ("lefteye_x", "lefteye_y", "righteye_x", "righteye_y", "nose_x", "nose_y", "leftmouth_x",
                 "leftmouth_y", "rightmouth_x", "rightmouth_y")
CELEBA_LEFT_EYE, CELEBA_RIGHT_EYE = 0, 1
MAFL_SPLITS = {"train": "training.txt", "test": "testing.txt"}
# Where the aligned faces may be, first match wins: the official code's PNG copies, then the released JPEGs.
CELEBA_IMAGE_FOLDERS = (("Img/img_align_celeba_png", ".png"), ("Img/img_align_celeba", ".jpg"),
                        ("img_align_celeba", ".jpg"))
DEEPFASHION_SIZE = 256  # the official code divides DeepFashion's pixels by 256


@dataclass(frozen=True)
class KeypointSet:
    """Images with annotated points: ``keypoints`` [N, K, 2] (x, y) in image pixels, ``visible`` [N, K] bool,
    ``sizes`` [N, 2] (width, height) of the frame the points refer to, and for Human3.6M the foreground ``masks``
    the official loader multiplies each image by."""

    images: list[Path]
    keypoints: np.ndarray
    visible: np.ndarray
    sizes: np.ndarray
    masks: list[Path] | None = None


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) of an image file (size-checked before it is read), or an InputError if it cannot be read."""
    image = read_bounded_image(path, MAX_IMAGE_BYTES, "dataset image", grey=True)
    return int(image.shape[1]), int(image.shape[0])


def require_files(paths: list[Path], what: str) -> None:
    """An InputError naming the first of ``paths`` that is not a file."""
    missing = next((path for path in paths if not path.is_file()), None)
    if missing is not None:
        raise InputError(f"{what} {missing} is missing", fix="point to the dataset folder, unchanged")


def point_array(values: object, where: str, count: int | None = None) -> np.ndarray:
    """``values`` as finite [K, 2] points (K = ``count`` when given), or an InputError naming ``where``."""
    try:
        points = np.asarray(values, np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{where} holds values that are not numbers", got=str(values)[:80]) from exc
    if points.ndim != 2 or points.shape[1] != 2 or (count is not None and len(points) != count):
        raise InputError(f"{where} is not a list of (x, y) points",
                         expected=f"[{count if count is not None else 'K'}, 2]", got=f"shape {points.shape}")
    if not np.all(np.isfinite(points)):
        raise InputError(f"{where} holds NaN or inf coordinates")
    return points


def read_json_list(path: Path, what: str) -> list:
    """A size-checked JSON file whose top level is a list."""
    try:
        entries = json.loads(read_bounded_text(path, MAX_JSON_BYTES, what))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path} is not JSON", got=str(exc)[:120]) from exc
    if not isinstance(entries, list):
        raise InputError(f"{path} is not a list", expected=f"a JSON list ({what})", got=type(entries).__name__)
    return entries


def stack(images: list[Path], points: list[np.ndarray], visible: object, sizes: object,
          masks: list[Path] | None = None) -> KeypointSet:
    """The :class:`KeypointSet` of per-image point arrays, which must all have the same number of points."""
    if not images:
        raise InputError("the split lists no image", fix="check the split files")
    return KeypointSet(images, np.stack(points), np.asarray(visible, bool), np.asarray(sizes, np.float64), masks)


def read_celeba_landmarks(path: str | Path) -> dict[str, np.ndarray]:
    """``list_landmarks_align_celeba.txt``: image stem (``000001``) -> [5, 2] (x, y) points."""
    path = Path(path)
    lines = read_bounded_text(path, MAX_LANDMARK_BYTES, "CelebA landmark list").splitlines()
    if len(lines) < 2 or not lines[0].strip().isdigit():
        raise InputError(f"{path} does not start with the image count", expected="a first line like 202599",
                         got=lines[0][:60] if lines else "an empty file")
    if tuple(lines[1].split()) != CELEBA_HEADER:
        raise InputError(f"{path} line 2 is not CelebA's landmark header", expected=" ".join(CELEBA_HEADER),
                         got=lines[1][:120])
    landmarks = {}
    for number, line in enumerate(lines[2:], 3):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 11:
            raise InputError(f"{path} line {number} is not an image name and 10 coordinates", got=line[:120])
        landmarks[Path(fields[0]).stem] = np.reshape(_numbers(fields[1:], path, number), (5, 2))
    if len(landmarks) != int(lines[0]):
        raise InputError(f"{path} announces {int(lines[0])} images but lists {len(landmarks)}",
                         fix="the file is truncated or edited; download it again")
    return landmarks


def _numbers(fields: list[str], path: Path, number: int) -> list[float]:
    try:
        values = [float(field) for field in fields]
    except ValueError as exc:
        raise InputError(f"{path} line {number} has a coordinate that is not a number",
                         got=" ".join(fields)[:120]) from exc
    if not np.all(np.isfinite(values)):
        raise InputError(f"{path} line {number} holds NaN or inf coordinates")
    return values


def _celeba_images(root: Path) -> tuple[Path, str]:
    for folder, suffix in CELEBA_IMAGE_FOLDERS:
        if (root / folder).is_dir():
            return root / folder, suffix
    raise InputError(f"{root} holds no aligned CelebA images",
                     expected=" or ".join(folder for folder, _ in CELEBA_IMAGE_FOLDERS))


def read_celeba_mafl(root: str | Path, split: str = "test") -> KeypointSet:
    """MAFL's ``split`` (``train``: 19,000 faces, ``test``: 1,000) of aligned CelebA with its five landmarks.

    ``root`` holds ``MAFL/`` and the landmark list (in ``Anno/`` as the official code expects, or beside the
    images); every point is visible; ``sizes`` repeats the first image's (width, height), as every aligned face
    is 178 x 218."""
    root = Path(root)
    if split not in MAFL_SPLITS:
        raise InputError("unknown MAFL split", expected=" or ".join(MAFL_SPLITS), got=repr(split))
    anno = root / "Anno" / "list_landmarks_align_celeba.txt"
    landmarks = read_celeba_landmarks(anno if anno.is_file() else root / "list_landmarks_align_celeba.txt")
    split_path = root / "MAFL" / MAFL_SPLITS[split]
    names = [line.strip() for line in read_bounded_text(split_path, MAX_SPLIT_BYTES, "MAFL split").splitlines()]
    folder, suffix = _celeba_images(root)
    images, points = [], []
    for number, name in enumerate(names, 1):
        if not name:
            continue
        stem = Path(name).stem
        if stem not in landmarks:
            raise InputError(f"{split_path} line {number} names an image the landmark list lacks", got=name)
        images.append(folder / f"{stem}{suffix}")
        points.append(landmarks[stem])
    require_files(images, "aligned CelebA image")
    size = image_size(images[0]) if images else (0, 0)
    return stack(images, points, np.ones((len(images), 5), bool), [size] * len(images))


def read_deepfashion(root: str | Path, split: str = "test") -> KeypointSet:
    """DeepFashion's ``split`` (``train`` or ``test``) as the official loader reads it: image paths from
    ``data_{split}.csv`` (under ``img/``), points from ``data_{split}.json`` in the same order.

    Points with a negative coordinate lie outside the image and are marked not visible; the official PCK counts
    every point regardless (pass ``visible=None`` to :func:`~edgereid.eval.keypoint_metrics.pck` to match)."""
    root = Path(root)
    if split not in ("train", "test"):
        raise InputError("unknown DeepFashion split", expected="train or test", got=repr(split))
    csv_path, json_path = root / f"data_{split}.csv", root / f"data_{split}.json"
    rows = list(csv.reader(io.StringIO(read_bounded_text(csv_path, MAX_JSON_BYTES, "DeepFashion image list"))))
    inside = (root / "img").resolve()
    images = []
    for number, row in enumerate(rows[1:], 2):
        if not row:
            continue
        if len(row) < 2 or not row[1].strip():
            raise InputError(f"{csv_path} line {number} has no image path in its second column",
                             got=",".join(row)[:120])
        path = (root / "img" / row[1].strip()).resolve()
        if inside not in path.parents:
            raise InputError(f"{csv_path} line {number} points outside img/", got=row[1][:120])
        images.append(path)
    entries = read_json_list(json_path, "DeepFashion keypoint list")
    if len(entries) != len(images):
        raise InputError(f"{json_path} and {csv_path} do not describe the same images",
                         expected=f"{len(images)} keypoint entries, one per CSV row", got=f"{len(entries)}")
    points = []
    for number, entry in enumerate(entries):
        where = f"{json_path} entry {number}"
        if not isinstance(entry, dict) or "keypoints" not in entry:
            raise InputError(f"{where} has no 'keypoints'", got=str(entry)[:120])
        points.append(point_array(entry["keypoints"], where, len(points[0]) if points else None))
    require_files(images, "DeepFashion image")
    first = image_size(images[0]) if images else (DEEPFASHION_SIZE, DEEPFASHION_SIZE)
    if first != (DEEPFASHION_SIZE, DEEPFASHION_SIZE):
        raise InputError(f"{images[0]} is not a {DEEPFASHION_SIZE} x {DEEPFASHION_SIZE} DeepFashion image",
                         got=f"{first} (width, height)",
                         fix="use the released 256 x 256 images: the keypoints are in their pixels")
    visible = [(p >= 0).all(axis=-1) for p in points]
    return stack(images, points, np.array(visible, bool).reshape(len(points), -1),
                 [(DEEPFASHION_SIZE, DEEPFASHION_SIZE)] * len(images))
