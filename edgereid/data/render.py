"""Bodies of the synthetic world: a walking skeleton, the clothes drawn on it, and clutter behind it.

Body units: the figure is 1 tall, y grows downwards from the top of the head, x = 0 is the body's
centre line. Limbs swing sinusoidally with the gait phase; seen from the side the swing shows in
the image plane, seen from the front or back it shows as foreshortening. Keypoints are the very
joints the limbs are drawn between, in COCO-17 order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from edgereid.data.appearance import CLOTHING_COLOURS, SHOE_COLOURS, SKIN_TONES, Identity
from edgereid.data.cameras import Camera, muted_colour
from edgereid.data.face_variation import FaceVariation, random_face_variation
from edgereid.data.faces import draw_head, ear_centres, face_box, face_landmarks, head_top, profile_points
from edgereid.data.painter import Colour, Painter, Similarity, as_colour, clip_band, shade

COCO_KEYPOINTS = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)
FACE_UNIT = 0.075  # body heights per face unit: faces are 0.15 of a person's height wide

_HIP_Y, _THIGH, _SHIN = 0.53, 0.22, 0.205
_ANKLE_Y = _HIP_Y + _THIGH + _SHIN
_SOLE_DROP = 0.046  # ankle to sole
_UPPER_ARM, _FOREARM = 0.165, 0.15
# (shoulder, elbow, wrist, hip, knee, ankle) indices of each side in COCO order
_JOINTS = {"left": (5, 7, 9, 11, 13, 15), "right": (6, 8, 10, 12, 14, 16)}
_FAR_SHADE = 0.78  # limbs on the far side in profile are in shadow


@dataclass(frozen=True)
class Pose:
    """How a person is seen in one picture: from which side, at which gait phase, and how their
    face looks in it (expression, head turn and tilt, light, hat or hair over the forehead)."""

    view: str  # "front", "back" or "side"
    phase: float  # gait phase, radians
    facing: int = 1  # in profile: +1 walking towards the image right, -1 towards the left
    face: FaceVariation = field(default_factory=FaceVariation)


def random_pose(view: str, rng: np.random.Generator) -> Pose:
    """A pose with a random gait phase, walking direction and face variation."""
    return Pose(view=view, phase=float(rng.uniform(0, 2 * math.pi)),
                facing=1 if rng.random() < 0.5 else -1, face=random_face_variation(rng))


@dataclass(frozen=True, eq=False)
class Skeleton:
    """Joint positions of one posed person, in body units."""

    points: np.ndarray  # [17, 2] COCO keypoints
    visible: np.ndarray  # [17] bool: not hidden by the person's own body
    head: Similarity  # face units -> body units
    top: float  # y of the top of the head (or hat)
    sole: float  # y of the soles

    def extent(self) -> tuple[float, float, float, float]:
        """A box ``(x0, y0, x1, y1)`` around everything drawn for this person."""
        x0 = min(float(self.points[:, 0].min()) - 0.08, -0.18)
        x1 = max(float(self.points[:, 0].max()) + 0.08, 0.18)
        return x0, self.top, x1, self.sole


def make_skeleton(identity: Identity, pose: Pose) -> Skeleton:
    """Joints of ``identity`` in ``pose``, standing with the lower ankle on the ground."""
    face, body = identity.face, identity.attributes.body
    half = face.width * face.length
    head_y = 1.15 * half * FACE_UNIT
    shoulder_y = head_y + (half + 0.6) * FACE_UNIT
    points = np.zeros((17, 2))
    for side, psi in (("left", pose.phase), ("right", pose.phase + math.pi)):
        out = _outward(side, pose.view)
        shoulder, elbow, wrist, hip, knee, ankle = _JOINTS[side]
        points[shoulder] = (out * 0.115 * body.shoulder_width, shoulder_y)
        points[hip] = (out * 0.055 * (0.6 + 0.4 * body.shoulder_width), _HIP_Y)
        swing = 0.42 * body.stride * math.sin(psi)
        bend = 0.6 * body.stride * max(0.0, math.cos(psi))
        points[knee] = _segment(points[hip], _THIGH, swing, -0.005 * out, pose)
        points[ankle] = _segment(points[knee], _SHIN, swing - bend, 0.0, pose)
        arm = -0.35 * body.stride * math.sin(psi)
        points[elbow] = _segment(points[shoulder], _UPPER_ARM, arm, out * _UPPER_ARM * 0.1, pose)
        points[wrist] = _segment(points[elbow], _FOREARM, 1.3 * arm + 0.25, out * _FOREARM * 0.06, pose)
    drop = _ANKLE_Y - max(points[15, 1], points[16, 1])  # the lower foot stands on the ground
    points[:, 1] += drop
    head = Similarity(FACE_UNIT, pose.face.roll, 0.0, head_y + drop)
    points[:5], head_visible = _head_keypoints(identity, pose, head)
    visible = np.concatenate([head_visible, _body_visibility(points, pose)])
    top = head.ty + head_top(face) * FACE_UNIT
    return Skeleton(points=points, visible=visible, head=head, top=top, sole=_ANKLE_Y + _SOLE_DROP)


def _outward(side: str, view: str) -> float:
    """Image x direction in which a side's limbs lie: the subject's left is the image right when
    they face the camera."""
    if view == "side":
        return 0.0
    toward_left = 1.0 if view == "front" else -1.0
    return toward_left if side == "left" else -toward_left


def _segment(start: np.ndarray, length: float, angle: float, lateral: float, pose: Pose) -> np.ndarray:
    """End of a limb segment swung ``angle`` radians forwards, projected for the view."""
    if pose.view == "side":
        dx = pose.facing * length * math.sin(angle)
    else:
        dx = lateral
    return start + np.array([dx, length * math.cos(angle)])


def _head_keypoints(identity: Identity, pose: Pose, head: Similarity) -> tuple[np.ndarray, np.ndarray]:
    """Nose, eyes and ears (COCO 0-4) in body units, and whether the head hides them."""
    face = identity.face
    visible = np.ones(5, dtype=bool)
    if pose.view == "side":
        prof = profile_points(face, pose.facing)
        far_eye = prof["eye"] - np.array([pose.facing * 0.25, 0.0])
        near_is_left = pose.facing < 0
        eyes = (prof["eye"], far_eye) if near_is_left else (far_eye, prof["eye"])
        points = np.array([prof["nose"], eyes[0], eyes[1], prof["ear"], prof["ear"]])
        visible[[2, 4] if near_is_left else [1, 3]] = False
        return head.apply(points), visible
    marks, ears = face_landmarks(face, pose.face), ear_centres(face)
    if pose.view == "front":  # the subject's left eye and ear are on the image right
        points = np.array([marks[2], marks[1], marks[0], ears[1], ears[0]])
    else:
        points = np.array([marks[2], marks[0], marks[1], ears[0], ears[1]])
        visible[:3] = False
    return head.apply(points), visible


def _body_visibility(points: np.ndarray, pose: Pose) -> np.ndarray:
    """Joints 5-16 hidden by the torso or the near leg when seen in profile."""
    visible = np.ones(12, dtype=bool)
    if pose.view != "side":
        return visible
    far = _JOINTS["left" if pose.facing > 0 else "right"]
    near = _JOINTS["right" if pose.facing > 0 else "left"]
    shoulder, elbow, wrist, hip, knee, ankle = far
    for joint in (shoulder, hip):
        visible[joint - 5] = False
    for joint in (elbow, wrist):
        visible[joint - 5] = abs(points[joint, 0]) > 0.07
    for joint, twin in ((knee, near[4]), (ankle, near[5])):
        visible[joint - 5] = abs(points[joint, 0] - points[twin, 0]) > 0.05
    return visible


@dataclass(frozen=True)
class _Colours:
    """An identity's clothing resolved to BGR colours."""

    skin: Colour
    upper: Colour
    pattern: Colour
    lower: Colour
    shoes: Colour
    accessory: Colour


def _colours(identity: Identity) -> _Colours:
    a = identity.attributes
    return _Colours(skin=as_colour(SKIN_TONES[a.skin_tone]), upper=as_colour(CLOTHING_COLOURS[a.upper_colour]),
                    pattern=as_colour(CLOTHING_COLOURS[a.pattern_colour]),
                    lower=as_colour(CLOTHING_COLOURS[a.lower_colour]),
                    shoes=as_colour(SHOE_COLOURS[a.shoe_colour]),
                    accessory=as_colour(CLOTHING_COLOURS[a.accessory_colour]))


def paint_person(p: Painter, identity: Identity, pose: Pose, skeleton: Skeleton) -> None:
    """Draw ``identity`` in ``pose`` through painter ``p`` (whose units are body units)."""
    colours = _colours(identity)
    torso = _torso_polygon(identity, pose, skeleton)
    if pose.view == "side":  # far limbs and a backpack go behind the body
        far, near = ("left", "right") if pose.facing > 0 else ("right", "left")
        _paint_arm(p, identity, skeleton, far, colours, _FAR_SHADE)
        _paint_leg(p, identity, pose, skeleton, far, colours, _FAR_SHADE)
        _paint_accessory_behind(p, identity, pose, skeleton, colours)
        legs_over_garment, arms = (near,), (near,)
    else:  # both legs go under the waistband, both arms over the torso's sides
        for side in ("left", "right"):
            _paint_leg(p, identity, pose, skeleton, side, colours, 1.0)
        legs_over_garment, arms = (), ("left", "right")
    _paint_lower_garment(p, identity, pose, skeleton, colours)
    _paint_neck(p, identity, skeleton, colours)
    _paint_torso(p, identity, pose, torso, colours)
    for side in legs_over_garment:
        _paint_leg(p, identity, pose, skeleton, side, colours, 1.0)
    for side in arms:
        _paint_arm(p, identity, skeleton, side, colours, 1.0)
    _paint_accessory_front(p, identity, pose, skeleton, torso, colours)
    draw_head(p.within(skeleton.head), identity, pose.face, pose.view, pose.facing)


def _paint_leg(p: Painter, identity: Identity, pose: Pose, sk: Skeleton, side: str,
               colours: _Colours, light: float) -> None:
    _, _, _, hip, knee, ankle = (sk.points[j] for j in _JOINTS[side])
    thick = identity.attributes.body.limb_thickness
    style = identity.attributes.lower_style
    leg = colours.lower if style == "trousers" else colours.skin
    p.limb(hip, knee, 0.07 * thick, 0.054 * thick, shade(leg, light))
    p.limb(knee, ankle, 0.054 * thick, 0.042 * thick, shade(leg, light))
    if style == "shorts":
        p.limb(hip, hip + 0.55 * (knee - hip), 0.08 * thick, 0.07 * thick, shade(colours.lower, light))
    if pose.view == "side":
        p.ellipse((ankle[0] + pose.facing * 0.03, ankle[1] + 0.022), (0.05, 0.022), 0.0,
                  shade(colours.shoes, light))
    else:
        p.ellipse((ankle[0], ankle[1] + 0.022), (0.03, 0.024), 0.0, shade(colours.shoes, light))


def _paint_arm(p: Painter, identity: Identity, sk: Skeleton, side: str, colours: _Colours,
               light: float) -> None:
    shoulder, elbow, wrist = (sk.points[j] for j in _JOINTS[side][:3])
    thick = identity.attributes.body.limb_thickness
    long_sleeves = identity.attributes.upper_style == "jacket"
    sleeve, skin = shade(colours.upper, light), shade(colours.skin, light)
    p.limb(shoulder, elbow, 0.052 * thick, 0.044 * thick, sleeve if long_sleeves else skin)
    p.limb(elbow, wrist, 0.044 * thick, 0.036 * thick, sleeve if long_sleeves else skin)
    if not long_sleeves:
        p.limb(shoulder, shoulder + 0.5 * (elbow - shoulder), 0.062 * thick, 0.056 * thick, sleeve)
    p.circle(tuple(wrist + (wrist - elbow) * (0.02 / _FOREARM)), 0.024 * thick, skin)


def _paint_neck(p: Painter, identity: Identity, sk: Skeleton, colours: _Colours) -> None:
    half = identity.face.width * identity.face.length
    chin = sk.head.apply(np.array([0.0, 0.5 * half]))
    shoulder_y = 0.5 * (sk.points[5, 1] + sk.points[6, 1])
    p.limb(chin, np.array([0.0, shoulder_y + 0.01]), 0.045, 0.05, shade(colours.skin, 0.85))


def _torso_polygon(identity: Identity, pose: Pose, sk: Skeleton) -> np.ndarray:
    """The upper garment's outline: shoulders to hips, seen from the front, back or side."""
    top = 0.5 * (sk.points[5, 1] + sk.points[6, 1])
    bottom = 0.5 * (sk.points[11, 1] + sk.points[12, 1]) + 0.01
    if pose.view == "side":
        d = pose.facing * (0.5 + 0.5 * identity.attributes.body.limb_thickness)
        return np.array([[d * 0.05, top - 0.01], [d * 0.075, top + 0.08], [d * 0.06, bottom],
                         [-d * 0.06, bottom], [-d * 0.07, top + 0.06], [-d * 0.045, top - 0.01]])
    shoulders = abs(sk.points[5, 0] - sk.points[6, 0]) / 2 + 0.02
    hips = abs(sk.points[11, 0] - sk.points[12, 0]) / 2 + 0.035
    return np.array([[-shoulders + 0.01, top - 0.012], [shoulders - 0.01, top - 0.012],
                     [shoulders + 0.005, top + 0.03], [hips, bottom], [-hips, bottom],
                     [-shoulders - 0.005, top + 0.03]])


def _paint_torso(p: Painter, identity: Identity, pose: Pose, torso: np.ndarray,
                 colours: _Colours) -> None:
    """The upper garment and its pattern (stripes and checks all round, a logo on the chest)."""
    p.polygon(torso, colours.upper)
    pattern, period = identity.attributes.pattern, 0.045
    top, bottom = float(torso[:, 1].min()), float(torso[:, 1].max())
    if pattern in ("stripes", "checks"):
        for y in np.arange(top + period * 0.5, bottom, period):
            p.polygon(clip_band(torso, 1, y, y + 0.45 * period), colours.pattern)
    if pattern == "checks":
        for x in np.arange(-0.3, 0.3, period):
            p.polygon(clip_band(torso, 0, x, x + 0.45 * period), colours.pattern)
    if pattern == "logo" and pose.view == "front":
        p.circle((0.0, top + 0.09), 0.032, colours.pattern)


def _paint_lower_garment(p: Painter, identity: Identity, pose: Pose, sk: Skeleton,
                         colours: _Colours) -> None:
    """Waistband and seat of trousers or shorts, or a skirt down to the knees."""
    hip_y = 0.5 * (sk.points[11, 1] + sk.points[12, 1])
    half = 0.06 if pose.view == "side" else abs(sk.points[11, 0] - sk.points[12, 0]) / 2 + 0.035
    if identity.attributes.lower_style == "skirt":
        hem = 0.5 * (sk.points[13, 1] + sk.points[14, 1]) - 0.01
        flare = 0.045 if pose.view == "side" else 0.05
        shape = [[-half, hip_y - 0.03], [half, hip_y - 0.03], [half + flare, hem], [-half - flare, hem]]
    else:
        shape = [[-half, hip_y - 0.03], [half, hip_y - 0.03], [half, hip_y + 0.05], [-half, hip_y + 0.05]]
    p.polygon(np.array(shape), colours.lower)


def _bag_shape(cx: float, cy: float, hx: float, hy: float) -> np.ndarray:
    """A box with cut corners: backpacks and bags."""
    c = 0.3 * min(hx, hy)
    return np.array([[cx - hx + c, cy - hy], [cx + hx - c, cy - hy], [cx + hx, cy - hy + c],
                     [cx + hx, cy + hy - c], [cx + hx - c, cy + hy], [cx - hx + c, cy + hy],
                     [cx - hx, cy + hy - c], [cx - hx, cy - hy + c]])


def _paint_accessory_behind(p: Painter, identity: Identity, pose: Pose, sk: Skeleton,
                            colours: _Colours) -> None:
    """A backpack seen in profile sticks out behind the torso."""
    if identity.attributes.accessory == "backpack":
        top = 0.5 * (sk.points[5, 1] + sk.points[6, 1])
        p.polygon(_bag_shape(-pose.facing * 0.1, top + 0.13, 0.05, 0.11), colours.accessory)


def _paint_accessory_front(p: Painter, identity: Identity, pose: Pose, sk: Skeleton,
                           torso: np.ndarray, colours: _Colours) -> None:
    """Straps, a backpack seen from behind, a bag at the hip."""
    accessory = identity.attributes.accessory
    top, bottom = float(torso[:, 1].min()), float(torso[:, 1].max())
    width = float(torso[:, 0].max())
    strap = shade(colours.accessory, 0.85)
    if accessory == "backpack" and pose.view == "back":
        p.polygon(_bag_shape(0.0, top + 0.13, 0.75 * width, 0.11), colours.accessory)
        p.stroke(np.array([[-0.6 * width, top + 0.06], [0.6 * width, top + 0.06]]), 0.015, strap)
    elif accessory == "backpack" and pose.view == "front":
        for s in (-1.0, 1.0):
            p.stroke(np.array([[s * 0.6 * width, top], [s * 0.55 * width, top + 0.2]]), 0.02, strap)
    elif accessory == "bag":
        s = 0.0 if pose.view == "side" else (1.0 if pose.view == "front" else -1.0)
        hip_x = s * (width + 0.03)
        p.stroke(np.array([[-s * 0.6 * width, top], [hip_x, bottom - 0.03]]), 0.016, strap)
        p.polygon(_bag_shape(hip_x, bottom + 0.03, 0.045, 0.05), colours.accessory)


def person_face(identity: Identity, pose: Pose, skeleton: Skeleton,
                placement: Similarity) -> tuple[np.ndarray, np.ndarray] | None:
    """Face box ``[4]`` and five landmarks ``[5, 2]`` in image pixels; None unless seen from
    the front."""
    if pose.view != "front":
        return None
    to_image = skeleton.head.then(placement)
    box = face_box(identity.face, to_image)
    marks = to_image.apply(face_landmarks(identity.face, pose.face)).astype(np.float32)
    return box, marks


def keypoints_in_image(skeleton: Skeleton, placement: Similarity, width: int, height: int) -> np.ndarray:
    """COCO keypoints ``[17, 3]`` (x, y, visible) in image pixels; visible needs the joint to be
    unhidden and inside the image."""
    xy = placement.apply(skeleton.points)
    inside = (xy[:, 0] >= 0) & (xy[:, 0] < width) & (xy[:, 1] >= 0) & (xy[:, 1] < height)
    return np.column_stack([xy, skeleton.visible & inside]).astype(np.float32)


def crop_placement(identity: Identity, skeleton: Skeleton, width: int, height: int,
                   rng: np.random.Generator) -> Similarity:
    """Body units -> crop pixels: a detector-like crop with small scale and shift jitter, moved
    (or shrunk) as needed so that the whole figure stays inside the crop."""
    scale = height * 0.92 * identity.attributes.body.height * float(np.exp(rng.normal(0.0, 0.03)))
    x0, y0, x1, y1 = skeleton.extent()
    scale = min(scale, (width - 2) / (x1 - x0), (height - 2) / (y1 - y0))
    tx = width / 2 + rng.normal(0.0, 0.03 * width)
    ty = height * 0.985 - skeleton.sole * scale + rng.normal(0.0, 0.015 * height)
    tx = float(np.clip(tx, 1 - x0 * scale, width - 1 - x1 * scale))
    ty = float(np.clip(ty, 1 - y0 * scale, height - 1 - y1 * scale))
    return Similarity(scale, 0.0, tx, ty)


def clutter_background(height: int, width: int, camera: Camera, rng: np.random.Generator) -> np.ndarray:
    """A busy backdrop in the camera's colours: wall and ground, texture, random boxes."""
    tint = rng.uniform(-20.0, 20.0, 3)
    horizon = int(rng.uniform(0.35, 0.75) * height)
    image = np.empty((height, width, 3), np.float32)
    image[:horizon] = np.asarray(camera.wall_colour, np.float32) + tint
    image[horizon:] = np.asarray(camera.ground_colour, np.float32) + tint
    coarse = rng.normal(0.0, 14.0, (height // 8 + 2, width // 8 + 2, 3)).astype(np.float32)
    image += cv2.resize(coarse, (width, height), interpolation=cv2.INTER_LINEAR)
    for _ in range(int(rng.integers(2, 7))):
        x, y = int(rng.integers(-width // 4, width)), int(rng.integers(-height // 4, height))
        w, h = int(rng.integers(width // 10, width // 2)), int(rng.integers(height // 10, height // 2))
        cv2.rectangle(image, (x, y), (x + w, y + h), muted_colour(rng, 30, 230), -1)
    return np.clip(image, 0, 255).astype(np.uint8)
