"""One photo of a face: the identity's head drawn at a random :class:`~edgereid.data.face_variation.FaceVariation`
on a plain backdrop, placed where the ArcFace template puts the eyes, relit; and :func:`degrade`, the
low-resolution copy a distant camera would see."""

from __future__ import annotations

import cv2
import numpy as np

from edgereid.data.appearance import CLOTHING_COLOURS, FaceParams, Identity
from edgereid.data.cameras import add_noise, jpeg_roundtrip
from edgereid.data.face_variation import head_colours, random_face_variation
from edgereid.data.faces import ARCFACE_TEMPLATE_112, FACE_UNIT_112, draw_bust, draw_head, face_landmarks
from edgereid.data.painter import SUPERSAMPLE, Painter, Similarity, as_colour, to_canvas


def render_face_image(identity: Identity, size: int,
                      rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A ``size`` x ``size`` BGR face crop of ``identity`` and its five landmarks in pixels.

    The identity's face is placed so its eye midpoint sits where the ArcFace template puts it,
    then jittered (scale, shift) per sample; the head's roll, turn, light, expression and
    any hat or hair over the forehead are those of a random :class:`FaceVariation`.
    """
    variation = random_face_variation(rng)
    placement = _face_placement(identity.face, variation.roll, size, rng)
    canvas = _face_background(size * SUPERSAMPLE, rng)
    painter = Painter(canvas, None, placement.then(to_canvas()))
    draw_bust(painter, identity.face, head_colours(identity.attributes, variation.light),
              as_colour(CLOTHING_COLOURS[identity.attributes.upper_colour]))
    draw_head(painter, identity, variation, "front", 1)
    image = cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA)
    landmarks = placement.apply(face_landmarks(identity.face, variation)).astype(np.float32)
    return _relight(image, rng), landmarks


def _face_placement(face: FaceParams, angle: float, size: int, rng: np.random.Generator) -> Similarity:
    """Face units -> crop pixels: template eye midpoint, the head's roll ``angle``, plus scale
    and shift jitter."""
    scale = size / 112.0 * FACE_UNIT_112 * float(np.exp(rng.normal(0.0, 0.05)))
    target = ARCFACE_TEMPLATE_112[:2].mean(axis=0) * size / 112.0 + rng.normal(0.0, 0.02 * size, 2)
    eyes = Similarity(scale, angle).apply(np.array([0.0, face.eye_height]))
    return Similarity(scale, angle, float(target[0] - eyes[0]), float(target[1] - eyes[1]))


def _face_background(side: int, rng: np.random.Generator) -> np.ndarray:
    """A plain backdrop with a vertical gradient, different for every photo."""
    top, bottom = rng.uniform(30, 230, 3), rng.uniform(30, 230, 3)
    ramp = np.linspace(0.0, 1.0, side, dtype=np.float32)[:, None, None]
    column = (top * (1 - ramp) + bottom * ramp).astype(np.uint8)
    return np.ascontiguousarray(np.broadcast_to(column, (side, side, 3)))


def _relight(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per-photo lighting: overall gain, a left-right gradient and a slight colour tint."""
    h, w = image.shape[:2]
    slope = rng.uniform(-0.4, 0.4)
    ramp = 1.0 + slope * (np.arange(w, dtype=np.float32) / max(w - 1, 1) - 0.5)
    gain = rng.uniform(0.75, 1.2) * rng.uniform(0.95, 1.05, 3).astype(np.float32)
    lit = image.astype(np.float32) * ramp[None, :, None] * gain[None, None, :]
    return np.clip(lit, 0, 255).astype(np.uint8)


def degrade(face: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """A low-resolution copy of a face crop: optical blur, area downsampling, noise, JPEG."""
    factor = face.shape[0] / size
    sigma = 0.35 * factor * rng.uniform(0.7, 1.3)
    blurred = cv2.GaussianBlur(face, (0, 0), sigma) if sigma > 0.3 else face
    small = cv2.resize(blurred, (size, size), interpolation=cv2.INTER_AREA)
    return jpeg_roundtrip(add_noise(small, rng.uniform(2.0, 6.0), rng), int(rng.integers(50, 91)))
