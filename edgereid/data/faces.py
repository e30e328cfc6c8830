"""Heads and faces of the synthetic world, drawn in face units.

Face units: the face centre is the origin, x points to the image right, y down, and an average
face outline is 2 wide. The same drawing serves the high-resolution face crops (placed near the
ArcFace 112x112 template) and the small heads on bodies, so a face found in a scene belongs to
the same identity as the face crops of its person. Identity shows in structure that survives
16-pixel faces (face shape, hair style, glasses, beard, feature spacing), not in colour: skin tones
and hair colours are shared by several identities (see :mod:`edgereid.data.appearance`).

Every picture of a face differs, as real photos do (:class:`~edgereid.data.face_variation.FaceVariation`): expression, head turn
(yaw, which slides the features sideways and foreshortens the far side, landmarks included) and
roll, light (exposure, white balance, a shadow on one side), and sometimes a hat or hair over the
forehead. Raw pixels therefore match poorly across pictures while the structure stays learnable.

Five-point landmarks follow the InsightFace order: eye on the image left, eye on the image right,
nose tip, mouth corner on the image left, mouth corner on the image right.
"""

from __future__ import annotations

import math
import numpy as np

from edgereid.data.appearance import CLOTHING_COLOURS, FaceParams, Identity
from edgereid.data.face_variation import Expression, FaceVariation, HeadColours, head_colours, tint
from edgereid.data.painter import (
    Colour, Painter, Similarity, as_colour, clip_band, clip_half_plane, ellipse_points, shade,
)

# ArcFace's 112x112 alignment template; HR face crops put the eye midpoint where it puts it.
ARCFACE_TEMPLATE_112 = np.array(
    [[38.29, 51.69], [73.53, 51.50], [56.03, 71.74], [41.55, 92.37], [70.73, 92.20]], np.float32)
FACE_UNIT_112 = 38.0  # pixels per face unit in a 112-pixel crop
_EAR_AXES = (0.14, 0.24)
_GLASSES: Colour = (25.0, 25.0, 25.0)
_EYE_WHITE: Colour = (235.0, 235.0, 235.0)
_IRIS: Colour = (40.0, 35.0, 30.0)
_MOUTH_INSIDE: Colour = (50.0, 35.0, 70.0)
_NOSE_DEPTH = 0.3  # how far the nose tip stands out of the face surface, face units


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


def turned(points: np.ndarray, face: FaceParams, yaw: float, depth: float | np.ndarray = 0.0) -> np.ndarray:
    """Points ``[..., 2]`` of a front-facing face as seen with the head turned by ``yaw``.

    The face surface is taken as a vertical cylinder of radius ``face.width`` (the cheeks): a point
    at ``x = r sin(phi)`` moves to ``r sin(phi + yaw)``, so features slide sideways and those on the
    far side crowd together, while the outline, being the silhouette, stays. ``depth`` (a number or
    one per point) is how far a point stands out of the cylinder, as the nose does.
    """
    out = np.array(points, dtype=np.float64)
    phi = np.arcsin(np.clip(out[..., 0] / face.width, -1.0, 1.0))
    out[..., 0] = face.width * np.sin(phi + yaw) + np.asarray(depth) * math.sin(yaw)
    return out


def face_landmarks(face: FaceParams, variation: FaceVariation) -> np.ndarray:
    """Five landmarks ``[5, 2]`` of a face in face units (InsightFace order), where they are
    drawn: after the expression moves the mouth and the yaw turns the head."""
    ey, lift = face.eye_height, 0.1 * variation.expression.smile
    front = np.array([
        [-face.eye_spacing, ey], [face.eye_spacing, ey], [0.0, ey + face.nose_length],
        [-face.mouth_width, mouth_y(face) - lift], [face.mouth_width, mouth_y(face) - lift],
    ])
    return turned(front, face, variation.yaw, np.array([0.0, 0.0, _NOSE_DEPTH, 0.0, 0.0]))


def ear_centres(face: FaceParams) -> np.ndarray:
    """Ear centres ``[2, 2]`` of a front-facing face (image-left first), in face units."""
    return np.array([[-0.98 * face.width, face.eye_height + 0.12],
                     [0.98 * face.width, face.eye_height + 0.12]])


def face_box(face: FaceParams, transform: Similarity) -> np.ndarray:
    """``(x1, y1, x2, y2)`` around the face outline once placed by ``transform``."""
    points = transform.apply(face_outline(face))
    return np.concatenate([points.min(axis=0), points.max(axis=0)]).astype(np.float32)


class _Head:
    """One head in one picture: draws the identity's structure through the picture's head turn
    (front views) and colours it under the picture's light."""

    def __init__(self, p: Painter, face: FaceParams, colours: HeadColours,
                 variation: FaceVariation) -> None:
        self.p, self.face, self.colours, self.variation = p, face, colours, variation

    def at(self, points, depth: float | np.ndarray = 0.0) -> np.ndarray:
        """Front-view face points where the turned head shows them."""
        return turned(points, self.face, self.variation.yaw, depth)

    def lit(self, colour: Colour, point) -> Colour:
        """``colour`` (already under the light's exposure) in the shadow at drawn ``point``."""
        return shade(colour, self.variation.light.brightness(point))

    def fill(self, polygon: np.ndarray, colour: Colour) -> None:
        """A drawn polygon, darker in the parts the shadow covers."""
        light = self.variation.light
        self.p.polygon(polygon, colour)
        away = (-light.shadow[0], -light.shadow[1])
        for start, level in light.bands():
            self.p.polygon(clip_half_plane(polygon, away, -start), shade(colour, level))

    def narrowing(self, x: float) -> float:
        """How much wider (>1) or narrower (<1) a small feature at front-view ``x`` looks once the
        head turns: the slope of :func:`turned`."""
        phi = math.asin(max(-1.0, min(1.0, x / self.face.width)))
        return max(math.cos(phi + self.variation.yaw), 0.15) / max(math.cos(phi), 0.15)

    def ellipse(self, centre, axes: tuple[float, float], colour: Colour) -> None:
        """A feature ellipse at front-view ``centre``, moved and narrowed by the head turn."""
        x, y = self.at(np.array(centre))
        width = axes[0] * self.narrowing(float(centre[0]))
        self.p.ellipse((x, y), (width, axes[1]), 0.0, self.lit(colour, (x, y)))

    def stroke(self, points: np.ndarray, width: float, colour: Colour) -> None:
        """A line along front-view ``points``, following the head turn."""
        drawn = self.at(points)
        self.p.stroke(drawn, width, self.lit(colour, drawn.mean(axis=0)))


def draw_front_head(p: Painter, face: FaceParams, colours: HeadColours, variation: FaceVariation) -> None:
    """A head seen from the front: hair, ears, face, beard, features, hair over the forehead,
    glasses; turned, lit and with the expression of one picture."""
    view = _Head(p, face, colours, variation)
    _draw_hair_behind(view)
    for centre in ear_centres(face):
        p.ellipse(tuple(centre), _EAR_AXES, 0.0, view.lit(shade(colours.skin, 0.9), centre))
    outline = face_outline(face)
    view.fill(outline, colours.skin)
    _draw_hairline(view, outline)
    if face.beard:
        view.fill(clip_band(outline, 1, mouth_y(face) - 0.2, 10.0), colours.hair)
    _draw_eyes_and_brows(view)
    _draw_nose(view)
    _draw_mouth(view)
    _draw_fringe(view, outline)
    if face.glasses:
        _draw_glasses(view)


def _draw_hair_behind(view: _Head) -> None:
    face, hair = view.face, view.colours.hair
    if face.hair_style == "bald":
        return
    half = _half_height(face)
    if face.hair_style == "long":
        view.fill(np.array([[-1.15 * face.width, -0.3 * half], [1.15 * face.width, -0.3 * half],
                            [1.3 * face.width, 1.5 * half], [-1.3 * face.width, 1.5 * half]]), hair)
    if face.hair_style == "bun":
        bun = (0.0, -1.15 * half - 0.2)
        view.p.circle(bun, 0.32, view.lit(hair, bun))
    view.fill(_hair_cap(face), hair)


def _draw_hairline(view: _Head, outline: np.ndarray) -> None:
    """Hair over the forehead: how low it comes is part of the hair style."""
    line = _hairline(view.face)
    if line is not None:
        view.fill(clip_band(outline, 1, -10.0, line), view.colours.hair)


def _hairline(face: FaceParams) -> float | None:
    """The y down to which a hair style covers the forehead; None when bald."""
    half = _half_height(face)
    return {"short": -0.62 * half, "long": -0.58 * half, "bun": -0.66 * half,
            "fringe": _brow_top(face) - 0.03}.get(face.hair_style)


def _brow_top(face: FaceParams) -> float:
    """Just above the brows: the lowest a fringe or hat comes."""
    return face.eye_height - face.brow_gap - 0.05


def _draw_fringe(view: _Head, outline: np.ndarray) -> None:
    """Hair fallen over the forehead in this picture, its lower edge slanted."""
    top, amount, slant = _hairline(view.face), view.variation.fringe, view.variation.fringe_slant
    if top is None or amount <= 0.0:
        return
    low = top + amount * (_brow_top(view.face) - top)
    normal = (math.sin(slant), math.cos(slant))
    view.fill(clip_half_plane(outline, normal, low * normal[1]), view.colours.hair)


def _draw_eyes_and_brows(view: _Head) -> None:
    face, light = view.face, view.variation.light
    ey, size = face.eye_height, face.eye_size
    opening = size * 0.8 * view.variation.expression.eye_open
    for side in (-1.0, 1.0):
        centre = (side * face.eye_spacing, ey)
        view.ellipse(centre, (size * 1.4, opening), tint(_EYE_WHITE, light))
        view.ellipse(centre, (size * 0.7, min(size * 0.7, opening)), tint(_IRIS, light))
        brow_y = ey - face.brow_gap
        inner = (side * (face.eye_spacing - 0.15), brow_y)
        outer = (side * (face.eye_spacing + 0.18), brow_y - face.brow_slant)
        view.stroke(np.array([inner, outer]), face.brow_thickness, view.colours.brows)


def _draw_nose(view: _Head) -> None:
    face = view.face
    tip = face.eye_height + face.nose_length
    outline = np.array([[0.0, face.eye_height + 0.08], [face.nose_width, tip], [0.0, tip + 0.04],
                        [-face.nose_width, tip]])
    drawn = view.at(outline, np.array([0.3, 0.5, 1.0, 0.5]) * _NOSE_DEPTH)
    view.p.polygon(drawn, view.lit(shade(view.colours.skin, 0.8), drawn[2]))


def _draw_mouth(view: _Head) -> None:
    face, expression = view.face, view.variation.expression
    left, right = face_landmarks(face, view.variation)[3:]
    y = mouth_y(face)
    middle = view.at(np.array([0.0, y + 0.06 * expression.smile]))
    if expression.mouth_open > 0.05:
        inside = view.at(np.array([[0.0, y - 0.03],
                                   [0.0, y + 0.06 * expression.smile + 0.4 * expression.mouth_open]]))
        view.p.polygon(np.array([left, inside[0], right, inside[1]]),
                       view.lit(tint(_MOUTH_INSIDE, view.variation.light), middle))
    view.p.stroke(np.array([left, middle, right]), face.lip_thickness, view.lit(view.colours.lips, middle))


def _draw_glasses(view: _Head) -> None:
    face = view.face
    radius, ey = _lens_radius(face), face.eye_height
    frame = tint(_GLASSES, view.variation.light)
    for side in (-1.0, 1.0):
        centre = np.array([side * face.eye_spacing, ey])
        view.p.ring(tuple(view.at(centre)), (radius * view.narrowing(centre[0]), radius), 0.05, frame)
        view.stroke(np.array([[side * (face.eye_spacing + radius), ey], [side * 0.98 * face.width, ey + 0.02]]),
                    0.04, frame)
    inner = face.eye_spacing - radius
    view.stroke(np.array([[-inner, ey], [inner, ey]]), 0.05, frame)


def _lens_radius(face: FaceParams) -> float:
    return max(1.9 * face.eye_size, 0.2)


def draw_back_head(p: Painter, face: FaceParams, colours: HeadColours, variation: FaceVariation) -> None:
    """A head seen from behind: skin, ears, and the hair over the back of the head."""
    view = _Head(p, face, colours, variation)
    view.fill(ellipse_points((0.0, 0.0), (face.width, _half_height(face))), colours.skin)
    for centre in ear_centres(face):
        p.ellipse(tuple(centre), _EAR_AXES, 0.0, view.lit(shade(colours.skin, 0.9), centre))
    _draw_hair_behind(view)


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
        lens = 0.6 * _lens_radius(face)
        p.ring(tuple(points["eye"]), (lens, lens), 0.05, _GLASSES)
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


def draw_head(p: Painter, identity: Identity, variation: FaceVariation, view: str, facing: int) -> None:
    """The head of ``identity`` in one picture, seen from ``view`` ("front", "back", "side" towards
    ``facing``), with a hat when they wear one. Face crops and scenes both draw heads with this, so
    the faces found in a scene are the faces of the crops."""
    face, colours = identity.face, head_colours(identity.attributes, variation.light)
    if view == "front":
        draw_front_head(p, face, colours, variation)
    elif view == "back":
        draw_back_head(p, face, colours, variation)
    else:
        draw_side_head(p, face, colours, facing, variation.expression)
    hat = _hat_colour(identity, variation)
    if hat is not None:
        draw_hat(p, face, tint(hat, variation.light), view, facing, variation.hat_depth)


def _hat_colour(identity: Identity, variation: FaceVariation) -> Colour | None:
    """The hat on ``identity``'s head in a picture: a hat wearer's own, else one worn for the
    picture, or None."""
    if identity.attributes.accessory == "hat":
        return as_colour(CLOTHING_COLOURS[identity.attributes.accessory_colour])
    return variation.hat


def draw_hat(p: Painter, face: FaceParams, colour: Colour, view: str, facing: int, depth: float) -> None:
    """A cap over the head, pulled down by ``depth`` (0: brim high on the forehead, 1: just above
    the brows); its brim shows from the front and in profile."""
    half, w = _half_height(face), face.width
    brim = -0.5 * half + depth * max(_brow_top(face) + 0.5 * half, 0.0)
    crown = ellipse_points((0.0, brim - 0.05 * half), (1.12 * w, 0.68 * half))
    p.polygon(clip_band(crown, 1, -10.0, brim), colour)
    if view == "front":
        p.ellipse((0.0, brim), (1.2 * w, 0.1), 0.0, shade(colour, 0.8))
    elif view == "side":
        p.stroke(np.array([[-facing * 0.2 * w, brim - 0.02 * half], [facing * 1.6 * w, brim + 0.04 * half]]),
                 0.12, shade(colour, 0.8))


def draw_bust(p: Painter, face: FaceParams, colours: HeadColours, top: Colour) -> None:
    """Neck and shoulders under a face crop, in the colour of the person's top."""
    half, w = _half_height(face), face.width
    p.limb(np.array([0.0, 0.5 * half]), np.array([0.0, 1.6 * half]), 1.0 * w, 1.0 * w,
           shade(colours.skin, 0.85))
    p.polygon(np.array([[-3.2 * w, 1.6 * half + 0.4], [-1.1 * w, 1.3 * half], [1.1 * w, 1.3 * half],
                        [3.2 * w, 1.6 * half + 0.4], [3.2 * w, 5.0 * half], [-3.2 * w, 5.0 * half]]), top)


