"""Readers of the two video keypoint benchmarks of StableKeypoints (Hedlin et al., CVPR 2024), in the layouts its
official loaders (``ubc-vision/StableKeypoints``, ``datasets/taichi.py`` and ``datasets/human36m.py``, both adapted
from AutoLink) read. They return :class:`~edgereid.data.keypoint_sets.KeypointSet`, points (x, y) in image pixels.

* **Tai-Chi** (the first-order-model / MRAA ``taichi-256`` evaluation frames): images
  ``eval_images/taichi-256/{train,test}/<file_name>`` and ground truth ``landmark/taichi_{train,test}_gt.pkl``, a
  pandas pickle of ``file_name`` and ``value`` (18 joints (x, y) in pixels of the 256 x 256 frame, -1 where
  missing). A pickle can run code when loaded and is never opened here: the reader wants the same table as JSON
  records beside it, ``landmark/taichi_{split}_gt.json`` (``[{"file_name": ..., "value": [[x, y], ...]}, ...]``),
  and says how to write it. A joint is visible when both coordinates are above 0, as the official loader decides.
* **Human3.6M** (Zhang et al.'s preprocessed frames, "Unsupervised discovery of object landmarks", CVPR 2018):
  ``S{subject}/WithBackground/{action folder}/{frame}.jpg``, the foreground mask
  ``S{subject}/BackgroudMask/{action folder}/{frame}.png`` (the release's spelling) and 32 joints
  ``S{subject}/Landmarks/{action folder}/{frame}.mat`` (variable ``keypoints_2d``, [32, 2] normalised to the
  frame's unit square, which the official evaluation multiplies by 128). Action folders are those whose name starts
  with Directions, Discussion, Posing, Waiting, Greeting or Walking; training subjects 1, 5, 6, 7, 8, 9, test
  subject 11 (``validation``: train on 1, 5, 6, 7, 8 and test on 9). The column order of ``keypoints_2d`` is
  taken as (x, y); the official code never reorders it and its error does not depend on the order. The ``.mat``
  files are read with ``scipy.io.loadmat`` (extra ``face-eval``), which parses data and runs no code.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgereid.data.keypoint_sets import (KeypointSet, image_size, point_array, read_json_list, require_files,
                                         stack)
from edgereid.errors import InputError, require

TAICHI_SIZE = 256  # the official loader divides Tai-Chi's pixels by 256
TAICHI_JOINTS = 18
H36M_ACTIONS = ("Directions", "Discussion", "Posing", "Waiting", "Greeting", "Walking")
H36M_SUBJECTS = {("train", False): (1, 5, 6, 7, 8, 9), ("test", False): (11,),
                 ("train", True): (1, 5, 6, 7, 8), ("test", True): (9,)}
H36M_JOINTS = 32
MAX_MAT_BYTES = 1 << 20  # one frame's 32 joints take well under a kilobyte


def _taichi_records(root: Path, split: str) -> list:
    table = root / "landmark" / f"taichi_{split}_gt.json"
    pickled = table.with_suffix(".pkl")
    if not table.is_file() and pickled.is_file():
        raise InputError(f"{pickled} is a pandas pickle, which is never loaded here (unpickling can run code)",
                         expected=f"the same table as JSON records in {table.name}",
                         fix="where you trust the file, run: python -c \"import pandas as pd; "
                             f"t = pd.read_pickle('{pickled}'); t['value'] = t['value'].map(lambda v: v.tolist()); "
                             f"t[['file_name', 'value']].to_json('{table}', orient='records')\"")
    return read_json_list(table, "Tai-Chi keypoint table")


def read_taichi(root: str | Path, split: str = "test") -> KeypointSet:
    """Tai-Chi's ``split`` (``train`` or ``test``) evaluation frames with their 18 joints in pixels of the
    256 x 256 frame; ``visible`` is False where a coordinate is 0 or below (missing joints are -1)."""
    root = Path(root)
    if split not in ("train", "test"):
        raise InputError("unknown Tai-Chi split", expected="train or test", got=repr(split))
    entries = _taichi_records(root, split)
    folder = root / "eval_images" / "taichi-256" / split
    images, points = [], []
    for number, entry in enumerate(entries):
        where = f"Tai-Chi table entry {number}"
        name = entry.get("file_name") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not name or "value" not in entry:
            raise InputError(f"{where} is not a frame with its joints", got=str(entry)[:120],
                             expected='{"file_name": "...png", "value": [[x, y], ... 18 joints]}')
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise InputError(f"{where} points outside {folder}", got=name)
        images.append(folder / name)
        points.append(point_array(entry["value"], where, TAICHI_JOINTS))
    require_files(images, "Tai-Chi frame")
    visible = [(p > 0).all(axis=-1) for p in points]
    return stack(images, points, visible, [(TAICHI_SIZE, TAICHI_SIZE)] * len(images))


def _h36m_frames(root: Path, subject: int) -> list[tuple[str, str]]:
    """(action folder, frame stem) of one subject, action by action, folders and frames in name order."""
    frames_root = root / f"S{subject}" / "WithBackground"
    if not frames_root.is_dir():
        raise InputError(f"missing {frames_root}", fix="point to Zhang et al.'s Human3.6M folder, unchanged")
    folders = sorted(p.name for p in frames_root.iterdir() if p.is_dir())
    return [(folder, frame.name.split(".")[0]) for action in H36M_ACTIONS for folder in folders
            if folder.startswith(action) for frame in sorted((frames_root / folder).iterdir()) if frame.is_file()]


def _h36m_joints(scipy_io, path: Path) -> np.ndarray:
    if not path.is_file():
        raise InputError(f"missing landmarks {path}", fix="every frame needs its Landmarks/.../<frame>.mat")
    if path.stat().st_size > MAX_MAT_BYTES:
        raise InputError(f"{path} is too large for one frame's landmarks", expected=f"at most {MAX_MAT_BYTES} bytes",
                         got=f"{path.stat().st_size} bytes")
    try:
        joints = scipy_io.loadmat(str(path))["keypoints_2d"]
    except KeyError as exc:
        raise InputError(f"{path} has no variable keypoints_2d", fix="use the released Landmarks files") from exc
    except (ValueError, TypeError, IndexError, OSError, scipy_io.matlab.MatReadError) as exc:
        raise InputError(f"{path} is not a MATLAB file", got=str(exc)[:120]) from exc
    joints = point_array(joints, str(path), H36M_JOINTS)
    if np.abs(joints).max() > 2:
        raise InputError(f"{path} holds pixel coordinates, not the normalised ones of the release",
                         expected="coordinates in [0, 1] of the frame", got=f"largest {np.abs(joints).max():.1f}")
    return joints


def read_human36m(root: str | Path, split: str = "test", validation: bool = False) -> KeypointSet:
    """Human3.6M's ``split`` (``train`` or ``test``; ``validation`` moves subject 9 from training to test) with
    its 32 joints scaled to the pixels of each sequence's frames (the first frame of every action folder is read
    for its size) and every joint visible, as the official loader has it.

    Reads one ``.mat`` per frame: the test split (subject 11) is quick, the training split takes a while."""
    root = Path(root)
    if split not in ("train", "test"):
        raise InputError("unknown Human3.6M split", expected="train or test", got=repr(split))
    scipy_io = require("scipy.io", "face-eval", "reading Human3.6M's landmark files")
    images, masks, points, sizes, folder_sizes = [], [], [], [], {}
    for subject in H36M_SUBJECTS[split, bool(validation)]:
        base = root / f"S{subject}"
        for folder, frame in _h36m_frames(root, subject):
            image = base / "WithBackground" / folder / f"{frame}.jpg"
            if (subject, folder) not in folder_sizes:
                folder_sizes[subject, folder] = image_size(image)
            size = folder_sizes[subject, folder]
            images.append(image)
            masks.append(base / "BackgroudMask" / folder / f"{frame}.png")
            points.append(_h36m_joints(scipy_io, base / "Landmarks" / folder / f"{frame}.mat") * size)
            sizes.append(size)
    require_files(images, "Human3.6M frame")
    require_files(masks, "Human3.6M foreground mask")
    return stack(images, points, np.ones((len(images), H36M_JOINTS), bool), sizes, masks)
