"""Pictures a person would rather look at than read: annotated frames and contact sheets."""

from __future__ import annotations

import colorsys
import zlib

import cv2
import numpy as np

from edgereid.types import FrameResult

UNKNOWN_COLOUR = (160, 160, 160)


def identity_colour(identity: str | None) -> tuple[int, int, int]:
    """A stable, distinct BGR colour per identity (grey for unknown)."""
    if identity is None:
        return UNKNOWN_COLOUR
    hue = (zlib.crc32(identity.encode()) * 0.618034) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 1.0)
    return int(b * 255), int(g * 255), int(r * 255)


def _label(image: np.ndarray, text: str, origin: tuple[int, int], colour: tuple[int, int, int]) -> None:
    x, y = origin
    (w, h), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.4, 1)
    y = max(y, h + 2)
    cv2.rectangle(image, (x, y - h - 3), (x + w + 2, y + 1), colour, -1)
    cv2.putText(image, text, (x + 1, y - 2), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)


def annotate(frame: np.ndarray, result: FrameResult, skeleton: tuple[tuple[int, int], ...] = (),
             min_confidence: float = 0.2) -> np.ndarray:
    """A copy of ``frame`` with person boxes, identity and score, skeletons and face matches drawn."""
    image = frame.copy()
    persons = result.persons
    for i, box in enumerate(persons.boxes.astype(int)):
        colour = _draw_match(image, box, persons.identities, persons.scores, i, label="{}", thickness=2)
        if persons.keypoints is not None:
            _draw_skeleton(image, persons.keypoints[i], persons.keypoint_confidence[i], skeleton, colour,
                           min_confidence)
    faces = result.faces
    for i, box in enumerate(faces.boxes.astype(int)):
        _draw_match(image, box, faces.identities, faces.scores, i, label="face {}", thickness=1,
                    below=True)
    _label(image, f"cam {result.camera_id}  t={result.timestamp:.1f}s", (4, 14), (255, 255, 255))
    return image


def _draw_match(image: np.ndarray, box: np.ndarray, identities: tuple[str | None, ...], scores: np.ndarray | None,
                i: int, *, label: str, thickness: int, below: bool = False) -> tuple[int, int, int]:
    """Row ``i``'s box in its identity's colour, labelled ``label`` filled with the identity ("unknown") and
    the score (none where it is NaN), above the box or ``below`` it. Returns the colour."""
    identity = identities[i] if identities else None
    colour = identity_colour(identity)
    cv2.rectangle(image, tuple(box[:2]), tuple(box[2:]), colour, thickness)
    if scores is not None:
        score = "" if np.isnan(scores[i]) else f" {scores[i]:.2f}"
        origin = (box[0], box[3] + 12) if below else (box[0], box[1] - 2)
        _label(image, label.format(identity or "unknown") + score, origin, colour)
    return colour


def _draw_skeleton(image: np.ndarray, points: np.ndarray, confidence: np.ndarray,
                   skeleton: tuple[tuple[int, int], ...], colour: tuple[int, int, int], min_confidence: float) -> None:
    for a, b in skeleton:
        if confidence[a] >= min_confidence and confidence[b] >= min_confidence:
            cv2.line(image, tuple(np.rint(points[a]).astype(int)), tuple(np.rint(points[b]).astype(int)),
                     colour, 1, cv2.LINE_AA)
    for point, conf in zip(points, confidence):
        if conf >= min_confidence:
            cv2.circle(image, tuple(np.rint(point).astype(int)), 2, (255, 255, 255), -1, cv2.LINE_AA)


