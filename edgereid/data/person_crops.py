"""Crop folders for keypoint work: model inputs with their maps back to the crop, the labelled
person-crop layout (``edgereid synth --layout person-crops``), and pseudo-label files.

Labelled folder: ``images/*.png`` (one person box cut from a scene frame each) and ``keypoints.json``
with ``joint_names`` and, per image name, ``[[x, y, visible], ...]`` in that crop's pixels (pixel
``i`` has its centre at ``i``). An unlabelled folder is any folder of crop images.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgereid.card import COCO17_JOINTS, InputSpec
from edgereid.errors import InputError
from edgereid.fileio import atomic_write_bytes, atomic_write_text

LABELS_FILE = "keypoints.json"


def model_inputs(images: list[np.ndarray], spec: InputSpec):
    """Whole crop images in a model's layout ``[N, 3, H, W]`` and the plan whose ``to_frame`` maps
    model-input pixels back to each crop's pixels."""
    from edgereid.ops.geometry import plan_whole_images
    from edgereid.ops.preprocess import preprocess_batch

    plan = plan_whole_images(images, spec)
    return preprocess_batch(images, plan, spec), plan


@dataclass
class LabelledCrops:
    """A labelled crop folder in memory: BGR images, ``keypoints [N, M, 3]`` (x, y, visible)."""

    paths: list[Path]
    images: list[np.ndarray]
    keypoints: np.ndarray
    joint_names: tuple[str, ...]


def write_person_crops(world, root: str | Path, *, frames_per_camera: int = 40, people_per_frame: int = 5,
                       pace: float = 4.0, min_height: int = 64) -> Path:
    """Person boxes of the world's scenes as crop images with their true COCO-17 joints."""
    from edgereid.data.synthetic import to_pixel_centres
    from edgereid.ops.geometry import validate_boxes
    import cv2

    root = Path(root)
    if (root / LABELS_FILE).exists():
        raise InputError(f"{root} already holds a crop folder", fix="choose an empty --out folder")
    labels: dict[str, list] = {}
    for cam in range(world.config.num_cameras):
        for index, frame in enumerate(world.scene(cam, frames_per_camera, pace=pace,
                                                  people_per_frame=people_per_frame)):
            if not frame.persons:
                continue
            boxes = validate_boxes(np.stack([p.box for p in frame.persons]), frame.frame.shape)
            for person, (x1, y1, x2, y2) in zip(frame.persons, boxes):
                if y2 - y1 < min_height:
                    continue
                name = f"c{cam}_f{index:05d}_p{person.pid:04d}.png"
                ok, png = cv2.imencode(".png", frame.frame[y1:y2, x1:x2])
                if not ok:
                    raise RuntimeError("PNG encoding failed")
                atomic_write_bytes(root / "images" / name, png.tobytes())
                points = to_pixel_centres(person.keypoints).astype(np.float64)
                points[:, :2] -= (x1, y1)
                labels[name] = np.round(points, 3).tolist()
    atomic_write_text(root / LABELS_FILE, json.dumps({"joint_names": list(COCO17_JOINTS), "images": labels}))
    return root


def read_labelled_crops(root: str | Path, limit: int | None = None) -> LabelledCrops:
    """A labelled folder (``keypoints.json`` + images); up to ``limit`` crops spread over the sorted list."""
    import cv2

    root = Path(root)
    if not (root / LABELS_FILE).is_file():
        raise InputError(f"{root} has no {LABELS_FILE}", expected="a labelled crop folder (images/ + keypoints.json)",
                         fix="write one with `edgereid synth --layout person-crops`, or label your own crops")
    data = json.loads((root / LABELS_FILE).read_text())
    names = sorted(data["images"])
    if limit is not None and len(names) > limit:
        names = [names[i] for i in np.linspace(0, len(names) - 1, limit).round().astype(int)]
    paths = [root / "images" / name for name in names]
    images = [cv2.imread(str(p), cv2.IMREAD_COLOR) for p in paths]
    missing = [str(p) for p, image in zip(paths, images) if image is None]
    if missing:
        raise InputError(f"{len(missing)} labelled images cannot be read", got=missing[0],
                         fix="restore the images or remove them from keypoints.json")
    keypoints = np.array([data["images"][n] for n in names], dtype=np.float32)
    return LabelledCrops(paths, images, keypoints, tuple(data["joint_names"]))


def save_pseudo_labels(path: str | Path, folder: str | Path, paths: list[Path], points: np.ndarray,
                       confidence: np.ndarray, teacher_sha256: str) -> Path:
    """Teacher points per crop (crop pixels) as ``.npz``: file names relative to ``folder``."""
    import io

    names = np.array([str(Path(p).relative_to(folder)) for p in paths])
    buffer = io.BytesIO()
    np.savez(buffer, files=names, points=points.astype(np.float32), confidence=confidence.astype(np.float32),
             teacher_sha256=np.array(teacher_sha256))
    return atomic_write_bytes(path, buffer.getvalue())


def load_pseudo_labels(path: str | Path) -> dict[str, np.ndarray]:
    """A pseudo-label file (no pickled objects are allowed in it)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"pseudo-label file not found: {path}", fix="run `edgereid keypoints label` first")
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in ("files", "points", "confidence", "teacher_sha256")}
