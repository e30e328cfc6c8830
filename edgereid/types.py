"""Public input and result types. They validate their shapes so errors surface at the boundary.

Arrays are NumPy at the public boundary: boxes ``[N, 4]`` as (x1, y1, x2, y2) in frame pixels,
keypoints ``[N, K, 2]`` as (x, y) in frame pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any, TypeVar, Union

import numpy as np

from edgereid.errors import EdgeReidError, InputError
from edgereid.ops.geometry import as_box_array

RowIndex = Union[int, slice, np.ndarray, list]
_Rows = TypeVar("_Rows", bound="_RowAligned")


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


class _RowAligned:
    """Row selection for result types whose arrays are row-aligned with ``boxes`` (after supervision's
    ``Detections``): ``result[mask]``, ``result[2:5]``, ``result[[0, 3]]`` and ``result[i]`` give the same
    type with those rows; per-result fields (``joint_names``) are kept whole."""

    boxes: np.ndarray

    def __len__(self) -> int:
        return len(self.boxes)

    def _check_common_rows(self, what: str) -> int:
        """Boxes, embeddings, scores, identities and invalid flags all row-aligned; returns the row count."""
        n = len(self.boxes)
        _rows("boxes", self.boxes, n, (4,))
        for name, trailing in (("embeddings", (None,)), ("scores", ()), ("invalid", ()), ("crop_boxes", (4,)),
                               ("track_ids", ()), ("reused", ())):
            _rows(name, getattr(self, name), n, trailing)
        identities = getattr(self, "identities")
        if identities and len(identities) != n:
            raise InputError(f"'identities' does not match the {what}", expected=str(n), got=str(len(identities)))
        return n

    def __getitem__(self: _Rows, index: RowIndex) -> _Rows:
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        if isinstance(index, np.ndarray) and index.dtype == bool and index.shape != (len(self),):
            raise InputError("boolean row mask of the wrong length", expected=f"[{len(self)}]", got=str(index.shape))
        rows = np.arange(len(self))[index]
        changes: dict[str, Any] = {}
        for spec in fields(self):  # type: ignore[arg-type]
            value = getattr(self, spec.name)
            if isinstance(value, np.ndarray):
                changes[spec.name] = value[rows]
            elif spec.name == "identities" and value:
                changes[spec.name] = tuple(value[i] for i in rows)
        return replace(self, **changes)  # type: ignore[type-var]

    @classmethod
    def empty(cls: type[_Rows]) -> _Rows:
        """No rows: what a frame without boxes gets."""
        return cls(np.zeros((0, 4), dtype=np.float32))  # type: ignore[call-arg]


@dataclass(frozen=True)
class FaceBoxes:
    """Face boxes handed in by the app's detector, optionally with 5-point landmarks (x, y)."""

    boxes: np.ndarray
    landmarks: np.ndarray | None = None

    def __post_init__(self) -> None:
        boxes = as_box_array(self.boxes, "face boxes").astype(np.float32)
        if boxes.size == 0:
            boxes = boxes.reshape(0, 4)
        _rows("face boxes", boxes, len(boxes), (4,))
        object.__setattr__(self, "boxes", boxes)
        if self.landmarks is not None:
            object.__setattr__(self, "landmarks", as_box_array(self.landmarks, "face landmarks").astype(np.float32))
        _rows("landmarks", self.landmarks, len(self.boxes), (5, 2))


@dataclass(frozen=True)
class Persons(_RowAligned):
    """Per-person results of one frame, row-aligned with the submitted boxes.

    ``boxes`` are the boxes as submitted (``xyxy``, float32), ``crop_boxes`` the clipped whole-pixel regions the
    models saw. ``scores`` are cosine scores against the ReID gallery; NaN where there is no score (no gallery,
    an empty gallery, or a failed row). ``invalid`` flags rows whose model output was not finite: their
    embedding is zero, their points NaN, and they were not matched. Select rows with ``persons[mask]``.

    With track ids submitted, ``track_ids`` echoes them (-1: untracked) and ``reused`` flags rows whose embedding
    was not computed but reused from their track (:mod:`edgereid.pipeline.tracks`); a tracked row's identity
    and score are its track's, decided on the track's aggregated embedding."""

    boxes: np.ndarray
    embeddings: np.ndarray | None = None
    identities: tuple[str | None, ...] = ()
    scores: np.ndarray | None = None
    keypoints: np.ndarray | None = None
    keypoint_confidence: np.ndarray | None = None
    joints: np.ndarray | None = None
    joint_names: tuple[str, ...] = ()
    invalid: np.ndarray | None = None
    crop_boxes: np.ndarray | None = None
    track_ids: np.ndarray | None = None
    reused: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = self._check_common_rows("boxes")
        _rows("keypoints", self.keypoints, n, (None, 2))
        _rows("keypoint_confidence", self.keypoint_confidence, n,
              (None if self.keypoints is None else self.keypoints.shape[1],))
        _rows("joints", self.joints, n, (len(self.joint_names), 2))


@dataclass(frozen=True)
class Faces(_RowAligned):
    """Per-face results of one frame, row-aligned with the submitted face boxes.

    ``too_small`` flags faces below the pipeline's ``min_face_size``: they were not embedded (zero
    vector) or matched (identity None, score NaN), since a few pixels cannot identify anyone; ``invalid``
    flags faces whose model output was not finite (zero embedding, not matched). NaN is the one "no
    score" value. Select rows with ``faces[mask]``. ``track_ids`` and ``reused`` as for :class:`Persons`."""

    boxes: np.ndarray
    embeddings: np.ndarray | None = None
    identities: tuple[str | None, ...] = ()
    scores: np.ndarray | None = None
    too_small: np.ndarray | None = None
    invalid: np.ndarray | None = None
    crop_boxes: np.ndarray | None = None
    track_ids: np.ndarray | None = None
    reused: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = self._check_common_rows("face boxes")
        _rows("too_small", self.too_small, n, ())


@dataclass(frozen=True)
class FrameResult:
    """Everything the pipeline found for one submitted frame.

    ``latency_ms`` runs from ``submit`` to the result being ready. ``error`` is set when this frame could not
    be processed (its persons and faces then carry only their boxes); the other frames of its batch and
    camera are unaffected.
    """

    sequence: int
    camera_id: str
    timestamp: float
    persons: Persons
    faces: Faces = field(default_factory=Faces.empty)
    modality: str = "rgb"
    latency_ms: float = 0.0
    error: EdgeReidError | None = None
    tag: Any = None

    def to_detections(self) -> Any:
        """The persons as ``supervision.Detections`` (see :func:`edgereid.interop.to_detections`)."""
        from edgereid.interop import to_detections

        return to_detections(self.persons)

    def to_keypoints(self) -> Any:
        """The persons' keypoints as ``supervision.KeyPoints``."""
        from edgereid.interop import to_keypoints

        return to_keypoints(self.persons)

    @property
    def ok(self) -> bool:
        return self.error is None
