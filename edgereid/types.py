"""Public input and result types. They validate their shapes so errors surface at the boundary.

Arrays are NumPy at the public boundary: boxes ``[N, 4]`` as (x1, y1, x2, y2) in frame pixels,
keypoints ``[N, K, 2]`` as (x, y) in frame pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edgereid.errors import InputError


def _rows(name: str, array: np.ndarray | None, count: int, trailing: tuple[int | None, ...]) -> None:
    """Check ``array`` is ``[count, *trailing]`` (None in ``trailing`` matches any size)."""
    if array is None:
        return
    shape = array.shape
    ok = (len(shape) == 1 + len(trailing) and shape[0] == count
          and all(t is None or s == t for s, t in zip(shape[1:], trailing)))
    if not ok:
        dims = ", ".join("*" if t is None else str(t) for t in trailing)
        raise InputError(f"'{name}' has the wrong shape", expected=f"[{count}, {dims}]", got=str(shape))


@dataclass(frozen=True)
class FaceBoxes:
    """Face boxes handed in by the app's detector, optionally with 5-point landmarks (x, y)."""

    boxes: np.ndarray
    landmarks: np.ndarray | None = None

    def __post_init__(self) -> None:
        boxes = np.asarray(self.boxes, dtype=np.float32)
        if boxes.size == 0:
            boxes = boxes.reshape(0, 4)
        _rows("face boxes", boxes, len(boxes), (4,))
        object.__setattr__(self, "boxes", boxes)
        if self.landmarks is not None:
            object.__setattr__(self, "landmarks", np.asarray(self.landmarks, dtype=np.float32))
        _rows("landmarks", self.landmarks, len(self.boxes), (5, 2))


@dataclass(frozen=True)
class Persons:
    """Per-person results of one frame, row-aligned with the submitted boxes."""

    boxes: np.ndarray
    embeddings: np.ndarray | None = None
    identities: tuple[str | None, ...] = ()
    scores: np.ndarray | None = None
    keypoints: np.ndarray | None = None
    keypoint_confidence: np.ndarray | None = None
    joints: np.ndarray | None = None
    joint_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        n = len(self.boxes)
        _rows("boxes", self.boxes, n, (4,))
        _rows("embeddings", self.embeddings, n, (None,))
        _rows("scores", self.scores, n, ())
        _rows("keypoints", self.keypoints, n, (None, 2))
        _rows("keypoint_confidence", self.keypoint_confidence, n,
              (None if self.keypoints is None else self.keypoints.shape[1],))
        _rows("joints", self.joints, n, (len(self.joint_names), 2))
        if self.identities and len(self.identities) != n:
            raise InputError("'identities' does not match the boxes", expected=str(n),
                             got=str(len(self.identities)))

    def __len__(self) -> int:
        return len(self.boxes)


@dataclass(frozen=True)
class Faces:
    """Per-face results of one frame, row-aligned with the submitted face boxes.

    ``too_small`` flags faces below the pipeline's ``min_face_size``: they were not embedded (zero
    vector) or matched (identity None, score NaN), since a few pixels cannot identify anyone."""

    boxes: np.ndarray
    embeddings: np.ndarray | None = None
    identities: tuple[str | None, ...] = ()
    scores: np.ndarray | None = None
    too_small: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.boxes)
        _rows("boxes", self.boxes, n, (4,))
        _rows("embeddings", self.embeddings, n, (None,))
        _rows("scores", self.scores, n, ())
        _rows("too_small", self.too_small, n, ())
        if self.identities and len(self.identities) != n:
            raise InputError("'identities' does not match the face boxes", expected=str(n),
                             got=str(len(self.identities)))

    def __len__(self) -> int:
        return len(self.boxes)


def _no_faces() -> Faces:
    return Faces(np.zeros((0, 4), dtype=np.float32))


@dataclass(frozen=True)
class FrameResult:
    """Everything the pipeline found for one submitted frame.

    ``latency_ms`` runs from ``submit`` to the result being ready.
    """

    sequence: int
    camera_id: str
    timestamp: float
    persons: Persons
    faces: Faces = field(default_factory=_no_faces)
    modality: str = "rgb"
    latency_ms: float = 0.0
