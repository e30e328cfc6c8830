"""Detections from the ecosystem's objects, and results back to it.

``submit``/``process`` take boxes as a ``[N, 4]`` array or list, a ``supervision.Detections``, an Ultralytics
``Boxes`` or ``Results`` (duck-typed on their attributes, so neither package is needed to import this), or a
torch tensor, in ``xyxy`` (the default), ``xywh`` or ``cxcywh``. Detector objects that carry class ids are
filtered to the classes asked for (COCO's person, class 0, by default). Results go back as
``supervision.Detections`` / ``KeyPoints`` through :func:`to_detections` and :func:`to_keypoints`.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from edgereid.errors import InputError, require

BOX_FORMATS = ("xyxy", "xywh", "cxcywh")
PERSON_CLASS = 0  # COCO's 'person', as YOLO models and supervision number it


def _host(values: Any) -> Any:
    """A torch tensor (CPU or CUDA) as a NumPy array; anything else unchanged."""
    if hasattr(values, "detach") and hasattr(values, "cpu"):
        return values.detach().cpu().numpy()
    return values


def detector_boxes(boxes: Any, box_format: str = "xyxy", classes: Sequence[int] | None = (PERSON_CLASS,)) -> Any:
    """``boxes`` as ``xyxy`` rows: detector objects unpacked (``Results.boxes``, ``.xyxy``), their rows kept
    when their class is in ``classes`` (None keeps every row), tensors moved to the host, and ``xywh`` /
    ``cxcywh`` converted. Plain arrays and lists come back as arrays for the caller's validation."""
    if box_format not in BOX_FORMATS:
        raise InputError(f"unknown box format {box_format!r:.20}", expected=" or ".join(BOX_FORMATS))
    if hasattr(boxes, "boxes") and hasattr(boxes.boxes, "xyxy"):  # an Ultralytics Results
        boxes = boxes.boxes
    if hasattr(boxes, "xyxy"):  # supervision.Detections, Ultralytics Boxes: corners whatever box_format says
        corners = np.asarray(_host(boxes.xyxy), dtype=np.float64).reshape(-1, 4)
        class_ids = getattr(boxes, "class_id", None)
        class_ids = getattr(boxes, "cls", None) if class_ids is None else class_ids
        if classes is not None and class_ids is not None:
            corners = corners[np.isin(np.asarray(_host(class_ids)).astype(np.int64), list(classes))]
        return corners
    boxes = _host(boxes)
    if box_format == "xyxy" or boxes is None or isinstance(boxes, (str, bytes)) or not hasattr(boxes, "__len__"):
        return boxes
    from edgereid.ops.geometry import as_box_array

    arr = as_box_array(boxes, "boxes")
    if arr.ndim != 2 or arr.shape[1] != 4:
        return arr  # the caller's validation names the shape
    x, y, w, h = arr.T
    if box_format == "cxcywh":
        x, y = x - w / 2, y - h / 2
    return np.stack([x, y, x + w, y + h], axis=1)


def to_detections(persons: Any) -> Any:
    """A frame's ``Persons`` as ``supervision.Detections``: boxes as submitted, class 0, the gallery score
    as confidence, and ``data`` holding each row's identity (None when unknown) and embedding."""
    sv = require("supervision", "interop", "converting results to supervision")
    data: dict[str, Any] = {"identity": np.array(list(persons.identities) or [None] * len(persons), dtype=object)}
    if persons.embeddings is not None:
        data["embedding"] = persons.embeddings
    return sv.Detections(xyxy=np.asarray(persons.boxes, dtype=np.float32).reshape(-1, 4),
                         class_id=np.zeros(len(persons), dtype=int), confidence=persons.scores, data=data)


def to_keypoints(persons: Any) -> Any:
    """A frame's keypoints as ``supervision.KeyPoints`` (frame pixels, one row per person)."""
    sv = require("supervision", "interop", "converting results to supervision")
    if persons.keypoints is None:
        raise InputError("these results hold no keypoints", fix="configure a keypoint_model")
    try:
        return sv.KeyPoints(xy=persons.keypoints, keypoint_confidence=persons.keypoint_confidence)
    except TypeError:  # supervision before 0.29 names it confidence
        return sv.KeyPoints(xy=persons.keypoints, confidence=persons.keypoint_confidence)
