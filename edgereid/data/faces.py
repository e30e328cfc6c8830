"""Heads and faces of the synthetic world, drawn in face units.

Face units: the face centre is the origin, x points to the image right, y down, and an average
face outline is 2 wide. The same drawing serves the high-resolution face crops (placed near the
ArcFace 112x112 template) and the small heads on bodies, so a face found in a scene belongs to
the same identity as the face crops of its person. Identity shows in structure that survives
16-pixel faces (face shape, hair style, glasses, beard, feature spacing), not only in colour.

Five-point landmarks follow the InsightFace order: eye on the image left, eye on the image right,
nose tip, mouth corner on the image left, mouth corner on the image right.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edgereid.data.appearance import (
    CLOTHING_COLOURS, HAIR_COLOURS, SKIN_TONES, Attributes, FaceParams, Identity,
)
from edgereid.data.cameras import add_noise, jpeg_roundtrip
from edgereid.data.painter import (
    SUPERSAMPLE, Colour, Painter, Similarity, as_colour, clip_band, clip_half_plane, ellipse_points,
    shade, to_canvas,
)

# ArcFace's 112x112 alignment template; HR face crops put the eye midpoint where it puts it.
ARCFACE_TEMPLATE_112 = np.array(
    [[38.29, 51.69], [73.53, 51.50], [56.03, 71.74], [41.55, 92.37], [70.73, 92.20]], np.float32)
_FACE_UNIT_112 = 38.0  # pixels per face unit in a 112-pixel crop
_EAR_AXES = (0.14, 0.24)
_GLASSES: Colour = (25.0, 25.0, 25.0)
_EYE_WHITE: Colour = (235.0, 235.0, 235.0)
_IRIS: Colour = (40.0, 35.0, 30.0)
_MOUTH_INSIDE: Colour = (50.0, 35.0, 70.0)


@dataclass(frozen=True)
class Expression:
    """Per-sample facial expression: what varies between photos of one face."""

    smile: float = 0.0  # -0.3 (frown) .. 1 (smile): mouth corners move up
    mouth_open: float = 0.0  # 0 .. 0.5
    eye_open: float = 1.0  # 0.4 .. 1


def random_expression(rng: np.random.Generator) -> Expression:
    """A plausible expression: mostly neutral-to-smiling, sometimes talking or blinking."""
    return Expression(smile=float(rng.uniform(-0.3, 1.0)),
                      mouth_open=float(rng.uniform(0.0, 0.5)) if rng.random() < 0.3 else 0.0,
                      eye_open=float(rng.uniform(0.4, 1.0)) if rng.random() < 0.2 else 1.0)


@dataclass(frozen=True)
class HeadColours:
    """The colours a head is drawn with, resolved from an identity's attribute names."""

    skin: Colour
    hair: Colour
    lips: Colour
    brows: Colour


def head_colours(attributes: Attributes) -> HeadColours:
    """Skin, hair, lip and brow colours of an identity."""
    skin = as_colour(SKIN_TONES[attributes.skin_tone])
    hair = as_colour(HAIR_COLOURS[attributes.hair_colour])
    lips = (skin[0] * 0.7, skin[1] * 0.65, min(255.0, skin[2] * 0.95))
    return HeadColours(skin=skin, hair=hair, lips=lips, brows=shade(hair, 0.7))


def _half_height(face: FaceParams) -> float:
    return face.width * face.length


def _hair_cap(face: FaceParams) -> np.ndarray:
    """The hair volume behind and above the face, as a polygon."""
    return ellipse_points((0.0, -0.2 * _half_height(face)), (1.1 * face.width, 0.95 * _half_height(face)))


def head_top(face: FaceParams) -> float:
    """A bound on the y of the top of the head, hair, bun or hat included, in face units."""
    top = -1.25 * _half_height(face)
    return top - 0.45 if face.hair_style == "bun" else top


def face_outline(face: FaceParams, count: int = 36) -> np.ndarray:
    """The skin outline of a front-facing face: an ellipse whose lower half narrows to the jaw."""
    t = np.linspace(0.0, 2 * np.pi, count, endpoint=False)
    below = np.clip(np.sin(t), 0.0, None)
    narrowing = 1.0 - (1.0 - face.jaw) * below ** 2
    return np.stack([face.width * np.cos(t) * narrowing, _half_height(face) * np.sin(t)], axis=1)


def mouth_y(face: FaceParams) -> float:
    """The y of the mouth line."""
    return face.eye_height + face.mouth_height


def face_landmarks(face: FaceParams, expression: Expression) -> np.ndarray:
    """Five landmarks ``[5, 2]`` of a front-facing face, in face units (InsightFace order)."""
    ey, lift = face.eye_height, 0.1 * expression.smile
    return np.array([
        [-face.eye_spacing, ey], [face.eye_spacing, ey], [0.0, ey + face.nose_length],
        [-face.mouth_width, mouth_y(face) - lift], [face.mouth_width, mouth_y(face) - lift],
    ])


def ear_centres(face: FaceParams) -> np.ndarray:
    """Ear centres ``[2, 2]`` of a front-facing face (image-left first), in face units."""
    return np.array([[-0.98 * face.width, face.eye_height + 0.12],
                     [0.98 * face.width, face.eye_height + 0.12]])


def face_box(face: FaceParams, transform: Similarity) -> np.ndarray:
    """``(x1, y1, x2, y2)`` around the face outline once placed by ``transform``."""
    points = transform.apply(face_outline(face))
    return np.concatenate([points.min(axis=0), points.max(axis=0)]).astype(np.float32)


def draw_front_head(p: Painter, face: FaceParams, colours: HeadColours, expression: Expression) -> None:
    """A head seen from the front: hair, ears, face, beard, features, glasses."""
    _draw_hair_behind(p, face, colours)
    for centre in ear_centres(face):
        p.ellipse(tuple(centre), _EAR_AXES, 0.0, shade(colours.skin, 0.9))
    outline = face_outline(face)
    p.polygon(outline, colours.skin)
    _draw_hairline(p, face, outline, colours)
    if face.beard:
        p.polygon(clip_band(outline, 1, mouth_y(face) - 0.2, 10.0), colours.hair)
    _draw_eyes_and_brows(p, face, colours, expression)
    _draw_nose(p, face, colours)
    _draw_mouth(p, face, colours, expression)
    if face.glasses:
        _draw_glasses(p, face)


def _draw_hair_behind(p: Painter, face: FaceParams, colours: HeadColours) -> None:
    if face.hair_style == "bald":
        return
    half = _half_height(face)
    if face.hair_style == "long":
        p.polygon(np.array([[-1.15 * face.width, -0.3 * half], [1.15 * face.width, -0.3 * half],
                            [1.3 * face.width, 1.5 * half], [-1.3 * face.width, 1.5 * half]]),
                  colours.hair)
    if face.hair_style == "bun":
        p.circle((0.0, -1.15 * half - 0.2), 0.32, colours.hair)
    p.polygon(_hair_cap(face), colours.hair)


def _draw_hairline(p: Painter, face: FaceParams, outline: np.ndarray, colours: HeadColours) -> None:
    """Hair over the forehead: how low it comes is part of the hair style."""
    half = _half_height(face)
    line = {"short": -0.62 * half, "long": -0.58 * half, "bun": -0.66 * half,
            "fringe": face.eye_height - face.brow_gap - 0.08}.get(face.hair_style)
    if line is not None:
        p.polygon(clip_band(outline, 1, -10.0, line), colours.hair)


def _draw_eyes_and_brows(p: Painter, face: FaceParams, colours: HeadColours,
                         expression: Expression) -> None:
    ey, size = face.eye_height, face.eye_size
    opening = size * 0.8 * expression.eye_open
    for side in (-1.0, 1.0):
        centre = (side * face.eye_spacing, ey)
        p.ellipse(centre, (size * 1.4, opening), 0.0, _EYE_WHITE)
        p.ellipse(centre, (size * 0.7, min(size * 0.7, opening)), 0.0, _IRIS)
        brow_y = ey - face.brow_gap
        inner = (side * (face.eye_spacing - 0.15), brow_y)
        outer = (side * (face.eye_spacing + 0.18), brow_y - face.brow_slant)
        p.stroke(np.array([inner, outer]), face.brow_thickness, colours.brows)


def _draw_nose(p: Painter, face: FaceParams, colours: HeadColours) -> None:
    tip = face.eye_height + face.nose_length
    p.polygon(np.array([[0.0, face.eye_height + 0.08], [face.nose_width, tip], [0.0, tip + 0.04],
                        [-face.nose_width, tip]]), shade(colours.skin, 0.8))


def _draw_mouth(p: Painter, face: FaceParams, colours: HeadColours, expression: Expression) -> None:
    left, right = face_landmarks(face, expression)[3:]
    y = mouth_y(face)
    middle = (0.0, y + 0.06 * expression.smile)
    if expression.mouth_open > 0.05:
        p.polygon(np.array([left, (0.0, y - 0.03), right,
                            (0.0, y + 0.06 * expression.smile + 0.4 * expression.mouth_open)]),
                  _MOUTH_INSIDE)
    p.stroke(np.array([left, middle, right]), face.lip_thickness, colours.lips)


def _draw_glasses(p: Painter, face: FaceParams) -> None:
    radius = max(1.9 * face.eye_size, 0.2)
    ey = face.eye_height
    for side in (-1.0, 1.0):
        p.ring((side * face.eye_spacing, ey), radius, 0.05, _GLASSES)
        p.stroke(np.array([[side * (face.eye_spacing + radius), ey],
                           [side * 0.98 * face.width, ey + 0.02]]), 0.04, _GLASSES)
    inner = face.eye_spacing - radius
    p.stroke(np.array([[-inner, ey], [inner, ey]]), 0.05, _GLASSES)


def draw_back_head(p: Painter, face: FaceParams, colours: HeadColours) -> None:
    """A head seen from behind: skin, ears, and the hair over the back of the head."""
    p.ellipse((0.0, 0.0), (face.width, _half_height(face)), 0.0, colours.skin)
    for centre in ear_centres(face):
        p.ellipse(tuple(centre), _EAR_AXES, 0.0, shade(colours.skin, 0.9))
    _draw_hair_behind(p, face, colours)


def draw_side_head(p: Painter, face: FaceParams, colours: HeadColours, facing: int,
                   expression: Expression) -> None:
    """A head in profile looking towards ``facing`` (+1 image right, -1 image left)."""
    half, w, d = _half_height(face), face.width, float(facing)
    points = profile_points(face, facing)
    head = ellipse_points((0.0, 0.0), (0.95 * w, half))
    if face.hair_style == "long":
        p.polygon(np.array([[-d * 1.05 * w, -0.3 * half], [-d * 0.05 * w, -0.3 * half],
                            [-d * 0.05 * w, 1.5 * half], [-d * 1.15 * w, 1.5 * half]]), colours.hair)
    p.polygon(head, colours.skin)
    if face.beard:
        chin = clip_band(head, 1, mouth_y(face) - 0.2, 10.0)
        p.polygon(clip_half_plane(chin, (-d, 0.0), 0.2), colours.hair)
    _draw_profile_features(p, face, colours, points, d, expression)
    if face.hair_style != "bald":
        cap = ellipse_points((-d * 0.1, -0.2 * half), (w, 0.95 * half))
        p.polygon(clip_half_plane(cap, (d, 0.0), 0.3 * w), colours.hair)
        p.polygon(clip_band(cap, 1, -10.0, -0.6 * half), colours.hair)
    if face.hair_style == "bun":
        p.circle((-d * 0.5, -1.0 * half), 0.32, colours.hair)
    if face.hair_style != "long":
        p.ellipse(tuple(points["ear"]), _EAR_AXES, 0.0, shade(colours.skin, 0.9))
    if face.glasses:
        p.ring(tuple(points["eye"]), max(1.9 * face.eye_size, 0.2) * 0.6, 0.05, _GLASSES)
        p.stroke(np.array([points["eye"], points["ear"]]), 0.04, _GLASSES)


def profile_points(face: FaceParams, facing: int) -> dict[str, np.ndarray]:
    """Eye, ear and nose tip of a head in profile, in face units."""
    w, d = face.width, float(facing)
    return {"eye": np.array([d * 0.68 * w, face.eye_height]),
            "ear": np.array([-d * 0.05 * w, face.eye_height + 0.12]),
            "nose": np.array([d * (0.95 * w + 1.2 * face.nose_width + 0.1),
                              face.eye_height + face.nose_length])}


def _draw_profile_features(p: Painter, face: FaceParams, colours: HeadColours,
                           points: dict[str, np.ndarray], d: float, expression: Expression) -> None:
    w, ey, y_mouth = face.width, face.eye_height, mouth_y(face)
    tip, eye = points["nose"], points["eye"]
    p.polygon(np.array([[d * 0.85 * w, ey + 0.05], tip, [d * 0.9 * w, tip[1] + 0.06]]), colours.skin)
    p.ellipse(tuple(eye), (face.eye_size, face.eye_size * 0.7 * expression.eye_open), 0.0, _EYE_WHITE)
    p.circle((eye[0] + d * 0.04, ey), face.eye_size * 0.5, _IRIS)
    p.stroke(np.array([[d * 0.45 * w, ey - face.brow_gap],
                       [d * 0.85 * w, ey - face.brow_gap - 0.5 * face.brow_slant]]),
             face.brow_thickness, colours.brows)
    p.stroke(np.array([[d * 0.7 * w, y_mouth], [d * 0.93 * w, y_mouth - 0.06 * expression.smile]]),
             face.lip_thickness, colours.lips)


def draw_hat(p: Painter, face: FaceParams, colour: Colour, view: str, facing: int) -> None:
    """A cap over the head; its brim shows from the front and in profile."""
    half, w = _half_height(face), face.width
    crown = ellipse_points((0.0, -0.55 * half), (1.12 * w, 0.68 * half))
    p.polygon(clip_band(crown, 1, -10.0, -0.5 * half), colour)
    if view == "front":
        p.ellipse((0.0, -0.5 * half), (1.2 * w, 0.1), 0.0, shade(colour, 0.8))
    elif view == "side":
        p.stroke(np.array([[-facing * 0.2 * w, -0.52 * half], [facing * 1.6 * w, -0.46 * half]]), 0.12,
                 shade(colour, 0.8))


def draw_bust(p: Painter, face: FaceParams, colours: HeadColours, top: Colour) -> None:
    """Neck and shoulders under a face crop, in the colour of the person's top."""
    half, w = _half_height(face), face.width
    p.limb(np.array([0.0, 0.5 * half]), np.array([0.0, 1.6 * half]), 1.0 * w, 1.0 * w,
           shade(colours.skin, 0.85))
    p.polygon(np.array([[-3.2 * w, 1.6 * half + 0.4], [-1.1 * w, 1.3 * half], [1.1 * w, 1.3 * half],
                        [3.2 * w, 1.6 * half + 0.4], [3.2 * w, 5.0 * half], [-3.2 * w, 5.0 * half]]), top)


def render_face_image(identity: Identity, size: int,
                      rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A ``size`` x ``size`` BGR face crop of ``identity`` and its five landmarks in pixels.

    The identity's face is placed so its eye midpoint sits where the ArcFace template puts it,
    then jittered (rotation, scale, shift) and lit per sample, with a random expression.
    """
    expression = random_expression(rng)
    placement = _face_placement(identity.face, size, rng)
    canvas = _face_background(size * SUPERSAMPLE, rng)
    colours = head_colours(identity.attributes)
    painter = Painter(canvas, None, placement.then(to_canvas()))
    draw_bust(painter, identity.face, colours,
              as_colour(CLOTHING_COLOURS[identity.attributes.upper_colour]))
    draw_front_head(painter, identity.face, colours, expression)
    image = cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA)
    landmarks = placement.apply(face_landmarks(identity.face, expression)).astype(np.float32)
    return _relight(image, rng), landmarks


def _face_placement(face: FaceParams, size: int, rng: np.random.Generator) -> Similarity:
    """Face units -> crop pixels: template eye midpoint, plus rotation/scale/shift jitter."""
    scale = size / 112.0 * _FACE_UNIT_112 * float(np.exp(rng.normal(0.0, 0.05)))
    angle = float(np.clip(rng.normal(0.0, 0.08), -0.2, 0.2))
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
