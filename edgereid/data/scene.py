"""Camera footage of the synthetic world: people walking through a street scene over time.

People cross the view in profile, walk towards the camera (front view, growing as they come
closer) or away from it (back view). Their height in the frame follows where their feet touch the
ground (80 px at the far edge of the walkway, up to 260 px close by). Each person is rendered with
a coverage mask and composited far-to-near, so nearer people occlude farther ones, and keypoints
and faces hidden by someone in front are marked as not visible.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from edgereid.data.appearance import Identity
from edgereid.data.cameras import Camera
from edgereid.data.face_variation import FaceVariation, random_face_variation
from edgereid.data.painter import SUPERSAMPLE, Painter, Similarity, as_colour, to_canvas
from edgereid.data.render import (
    FACE_UNIT, Pose, Skeleton, keypoints_in_image, make_skeleton, paint_person, person_face,
)

FPS = 10.0
PERSON_HEIGHT_RANGE = (80.0, 260.0)  # pixels, far to near
FACE_WIDTH_RANGE = (12.0, 40.0)  # pixels; person heights are clamped so faces stay inside it
_FACE_MARGIN = 0.2  # keeps face widths strictly inside FACE_WIDTH_RANGE
_MIN_SHOWN = 0.3  # a person is reported when at least this fraction of them is in the frame


@dataclass(frozen=True, eq=False)
class SceneObject:
    """A person in a frame: box ``[4]`` (x1, y1, x2, y2) and COCO keypoints ``[17, 3]``."""

    pid: int
    box: np.ndarray
    keypoints: np.ndarray
    viewpoint: str


@dataclass(frozen=True, eq=False)
class SceneFace:
    """A visible front-facing face in a frame: box ``[4]`` and five landmarks ``[5, 2]``."""

    pid: int
    box: np.ndarray
    landmarks: np.ndarray


@dataclass(frozen=True, eq=False)
class SceneFrame:
    """One recorded frame with the ground truth of everyone in it."""

    frame: np.ndarray  # uint8 BGR [H, W, 3]
    frame_index: int
    timestamp: float  # seconds, at FPS frames per second
    cam_id: int
    persons: list[SceneObject]
    faces: list[SceneFace]
    clean: np.ndarray | None = None  # the composed scene before the camera's effects (for other cameras' views)


@dataclass
class _Walker:
    """A person on their way through the scene (mutable: advanced every frame)."""

    identity: Identity
    view: str
    facing: int
    face: FaceVariation  # head turn, light, expression...: kept while they cross the scene
    x: float  # feet, frame pixels
    foot_y: float
    vx: float  # pixels per frame
    vy: float
    phase: float
    phase_rate: float  # radians per frame


class _Street:
    """The walkway of one frame size: where feet can be, and how tall people are there."""

    def __init__(self, height: int, width: int) -> None:
        self.height, self.width = height, width
        self.near_y = height - 4.0
        self.far_y = min(max(PERSON_HEIGHT_RANGE[0] + 4.0, 0.36 * height), self.near_y - 1.0)

    def person_height(self, foot_y: float, identity: Identity) -> float:
        """Pixel height (body units -> pixels) of ``identity`` standing at ``foot_y``."""
        low, high = PERSON_HEIGHT_RANGE
        high = min(high, self.near_y - 4.0)
        depth = (foot_y - self.far_y) / (self.near_y - self.far_y)
        nominal = (low / 0.86 + depth * (high - low / 0.86)) * identity.attributes.body.height
        face_per_pixel = 2 * identity.face.width * FACE_UNIT
        fits_face = ((FACE_WIDTH_RANGE[0] + _FACE_MARGIN) / face_per_pixel,
                     (FACE_WIDTH_RANGE[1] - _FACE_MARGIN) / face_per_pixel)
        return float(np.clip(nominal, max(low, fits_face[0]), min(high, fits_face[1])))

    def finished(self, walker: _Walker) -> bool:
        """True once a walker has left the walkway."""
        margin = 0.5 * PERSON_HEIGHT_RANGE[1]
        return not (-margin <= walker.x <= self.width + margin and self.far_y <= walker.foot_y <= self.near_y)


def _spawn(rng: np.random.Generator, identity: Identity, camera: Camera, street: _Street,
           anywhere: bool) -> _Walker:
    """A new walker entering the scene (or, with ``anywhere``, already somewhere on the way)."""
    view = camera.sample_viewpoint(rng)
    facing = 1 if rng.random() < 0.5 else -1
    foot_y = float(rng.uniform(street.far_y, street.near_y))
    x, vx, vy = float(rng.uniform(0.1, 0.9) * street.width), float(rng.uniform(-0.5, 0.5)), 0.0
    if view == "side":
        speed = 0.07 * street.person_height(foot_y, identity) * float(rng.uniform(0.8, 1.2))
        vx = facing * speed
        if not anywhere:
            half_width = 0.3 * street.person_height(foot_y, identity)
            x = -half_width if facing > 0 else street.width + half_width
    else:
        vy = float(rng.uniform(1.5, 3.0)) * (1.0 if view == "front" else -1.0)
        if not anywhere:
            foot_y = street.far_y if view == "front" else street.near_y
    stride_rate = 2 * math.pi / FPS * float(rng.uniform(0.85, 1.15))
    return _Walker(identity=identity, view=view, facing=facing, face=random_face_variation(rng),
                   x=x, foot_y=foot_y, vx=vx, vy=vy, phase=float(rng.uniform(0, 2 * math.pi)),
                   phase_rate=stride_rate)


@dataclass(frozen=True, eq=False)
class _Cutout:
    """A rendered person ready to paste: patch, coverage and where it goes."""

    walker: _Walker
    pose: Pose
    skeleton: Skeleton
    placement: Similarity  # body units -> frame pixels
    keypoints: np.ndarray  # [17, 3], frame pixels, self-occlusion only
    patch: np.ndarray  # uint8 [h, w, 3]
    alpha: np.ndarray  # float32 [h, w] coverage
    origin: tuple[int, int]  # frame position of the patch's top-left pixel


def _cut_out(walker: _Walker, street: _Street) -> _Cutout:
    """Render a walker at its place in the frame into a tight patch with a coverage mask."""
    identity = walker.identity
    pose = Pose(view=walker.view, phase=walker.phase, facing=walker.facing, face=walker.face)
    skeleton = make_skeleton(identity, pose)
    scale = street.person_height(walker.foot_y, identity)
    placement = Similarity(scale, 0.0, walker.x, walker.foot_y - skeleton.sole * scale)
    x0, y0, x1, y1 = skeleton.extent()
    left, top = math.floor(placement.tx + x0 * scale), math.floor(placement.ty + y0 * scale)
    width = math.ceil(placement.tx + x1 * scale) - left + 1
    height = math.ceil(placement.ty + y1 * scale) - top + 1
    local = Similarity(scale, 0.0, placement.tx - left, placement.ty - top)
    canvas = np.zeros((height * SUPERSAMPLE, width * SUPERSAMPLE, 3), np.uint8)
    mask = np.zeros(canvas.shape[:2], np.uint8)
    paint_person(Painter(canvas, mask, local.then(to_canvas())), identity, pose, skeleton)
    patch = cv2.resize(canvas, (width, height), interpolation=cv2.INTER_AREA)
    alpha = cv2.resize(mask, (width, height), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    keypoints = keypoints_in_image(skeleton, placement, street.width, street.height)
    return _Cutout(walker, pose, skeleton, placement, keypoints, patch, alpha, (left, top))


def _paste(frame: np.ndarray, owner: np.ndarray, cut: _Cutout, index: int) -> tuple[int, int]:
    """Blend a cutout into ``frame``, mark the pixels it covers in ``owner``; returns (pixels of
    the person inside the frame, pixels of the person in all)."""
    left, top = cut.origin
    h, w = cut.alpha.shape
    fx0, fy0 = max(left, 0), max(top, 0)
    fx1, fy1 = min(left + w, frame.shape[1]), min(top + h, frame.shape[0])
    covered = int(np.count_nonzero(cut.alpha > 0.5))
    if fx1 <= fx0 or fy1 <= fy0:
        return 0, covered
    region = (slice(fy0, fy1), slice(fx0, fx1))
    local = (slice(fy0 - top, fy1 - top), slice(fx0 - left, fx1 - left))
    alpha = cut.alpha[local]
    # the patch was drawn on black, so its edge pixels already carry their coverage (premultiplied)
    blended = cut.patch[local] + frame[region] * (1.0 - alpha)[..., None]
    frame[region] = np.clip(np.round(blended), 0, 255).astype(np.uint8)
    solid = alpha > 0.5
    owner[region][solid] = index
    return int(np.count_nonzero(solid)), covered


def _box_of(cut: _Cutout, frame_shape: tuple[int, ...]) -> np.ndarray:
    """Tight box around the pixels the person covers in the frame, visible or occluded."""
    left, top = cut.origin
    rows, cols = np.nonzero(cut.alpha > 0.5)
    x0 = max(left + int(cols.min()), 0)
    y0 = max(top + int(rows.min()), 0)
    x1 = min(left + int(cols.max()) + 1, frame_shape[1])
    y1 = min(top + int(rows.max()) + 1, frame_shape[0])
    return np.array([x0, y0, x1, y1], np.float32)


def _visible_to_camera(keypoints: np.ndarray, owner: np.ndarray, index: int) -> np.ndarray:
    """Keypoints with visibility cleared where another person covers them."""
    out = keypoints.copy()
    for joint in np.flatnonzero(out[:, 2] > 0):
        x, y = int(out[joint, 0]), int(out[joint, 1])
        if owner[y, x] != index:
            out[joint, 2] = 0.0
    return out


def _face_of(cut: _Cutout, owner: np.ndarray, index: int) -> tuple[np.ndarray, np.ndarray] | None:
    """A front face that is wholly inside the frame and not covered by someone else."""
    face = person_face(cut.walker.identity, cut.pose, cut.skeleton, cut.placement)
    if face is None:
        return None
    box, landmarks = face
    h, w = owner.shape
    if box[0] < 0 or box[1] < 0 or box[2] > w or box[3] > h:
        return None
    cx, cy = int((box[0] + box[2]) / 2), int((box[1] + box[3]) / 2)
    return face if owner[cy, cx] == index else None


def _compose(background: np.ndarray, walkers: Sequence[_Walker], street: _Street
             ) -> tuple[np.ndarray, list[SceneObject], list[SceneFace]]:
    """Paste walkers far to near and collect the ground truth of those shown enough."""
    frame = background.copy()
    owner = np.full(frame.shape[:2], -1, np.int16)
    cuts = [_cut_out(w, street) for w in sorted(walkers, key=lambda w: w.foot_y)]
    shown = [_paste(frame, owner, cut, index) for index, cut in enumerate(cuts)]
    persons, faces = [], []
    for index, (cut, (inside, total)) in enumerate(zip(cuts, shown)):
        if total == 0 or inside < _MIN_SHOWN * total:
            continue
        pid = cut.walker.identity.pid
        persons.append(SceneObject(pid=pid, box=_box_of(cut, frame.shape),
                                   keypoints=_visible_to_camera(cut.keypoints, owner, index),
                                   viewpoint=cut.walker.view))
        face = _face_of(cut, owner, index)
        if face is not None:
            faces.append(SceneFace(pid=pid, box=face[0], landmarks=face[1]))
    return frame, persons, faces


def _pick_identity(rng: np.random.Generator, identities: Sequence[Identity],
                   walkers: Sequence[_Walker], appearances: dict[int, int]) -> Identity:
    """Someone not already in the scene (one person cannot be in two places), preferring those seen
    least so far, so that every identity passes the camera in a clip of reasonable length."""
    busy = {w.identity.pid for w in walkers}
    free = [identity for identity in identities if identity.pid not in busy]
    fewest = min(appearances.get(identity.pid, 0) for identity in free)
    candidates = [identity for identity in free if appearances.get(identity.pid, 0) == fewest]
    chosen = candidates[int(rng.integers(len(candidates)))]
    appearances[chosen.pid] = fewest + 1
    return chosen


def generate_scene(identities: Sequence[Identity], camera: Camera, background: np.ndarray,
                   num_frames: int, people_per_frame: int, rng: np.random.Generator,
                   pace: float = 1.0) -> Iterator[SceneFrame]:
    """Frames of people walking past ``camera`` in front of ``background``; ``pace`` scales how far
    they move between frames (higher: more people pass in fewer frames)."""
    street = _Street(*background.shape[:2])
    walkers: list[_Walker] = []
    appearances: dict[int, int] = {}
    for _ in range(min(people_per_frame, len(identities))):
        walkers.append(_spawn(rng, _pick_identity(rng, identities, walkers, appearances), camera, street, True))
    for index in range(num_frames):
        clean, persons, faces = _compose(background, walkers, street)
        yield SceneFrame(frame=camera.apply(clean, rng), frame_index=index, timestamp=index / FPS,
                         cam_id=camera.cam_id, persons=persons, faces=faces, clean=clean)
        for slot, walker in enumerate(walkers):
            walker.x += walker.vx * pace
            walker.foot_y += walker.vy * pace
            walker.phase += walker.phase_rate * pace
            if street.finished(walker):
                others = walkers[:slot] + walkers[slot + 1:]
                walkers[slot] = _spawn(rng, _pick_identity(rng, identities, others, appearances), camera,
                                       street, False)


def street_background(height: int, width: int, camera: Camera, rng: np.random.Generator) -> np.ndarray:
    """A camera's fixed view: building fronts with windows above, a paved walkway below."""
    horizon = int(0.33 * height)
    wall = np.asarray(camera.wall_colour, np.float32)
    ground = np.asarray(camera.ground_colour, np.float32)
    image = np.empty((height, width, 3), np.float32)
    image[:horizon] = wall
    ramp = np.linspace(0.85, 1.15, height - horizon, dtype=np.float32)[:, None, None]
    image[horizon:] = ground * ramp
    x = 0
    while x < width:
        span = int(rng.integers(width // 8, width // 3))
        roof = int(rng.integers(0, horizon // 2))
        colour = np.clip(wall + rng.uniform(-40, 40, 3), 0, 255)
        cv2.rectangle(image, (x, roof), (x + span, horizon), as_colour(colour), -1)
        _windows(image, x, roof, span, horizon, colour * 0.6)
        x += span
    for end in np.linspace(-width, 2 * width, 9):
        cv2.line(image, (width // 2, horizon), (int(end), height), as_colour(ground * 0.8), 2)
    coarse = rng.normal(0.0, 8.0, (height // 16 + 2, width // 16 + 2, 3)).astype(np.float32)
    image += cv2.resize(coarse, (width, height), interpolation=cv2.INTER_LINEAR)
    return np.clip(image, 0, 255).astype(np.uint8)


def _windows(image: np.ndarray, x: int, roof: int, span: int, floor: int, colour: np.ndarray) -> None:
    """A grid of windows on one building front."""
    step = max(12, span // 4)
    for wx in range(x + step // 3, x + span - step // 2, step):
        for wy in range(roof + step // 3, floor - step // 2, step):
            cv2.rectangle(image, (wx, wy), (wx + step // 2, wy + step // 2),
                          as_colour(colour), -1)
