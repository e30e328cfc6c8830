"""A procedural world of people seen by cameras, reproducible from one seed.

Tests, the demo and training use it in place of downloaded datasets. Identities differ by
combinations of clothing colours, patterns, accessories, shoes, hair, body shape and face
(every clothing colour is worn by several people); cameras differ by exposure, colour cast,
blur, noise, JPEG quality, resolution, preferred viewpoint and modality (RGB or IR). The world
renders person crops with COCO-17 keypoints and faces, face crops at any resolution, scene
footage with ground truth, and writes the on-disk layouts of Market-1501, SYSU-MM01 and face
folders, so that :mod:`edgereid.data.datasets` reads synthetic and real data alike.

Identities are numbered from 1 (as in Market-1501, where 0000 marks distractors and -1 junk); cameras from 0.
All coordinates are continuous pixels in which pixel ``(i, j)`` covers ``[i, i+1) x [j, j+1)``.
Same seed, same pixels; per-identity looks come from ``(seed, pid)`` streams, so adding
identities or cameras leaves the existing ones unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import ClassVar
from pathlib import Path

import cv2
import numpy as np

from edgereid.data.appearance import Identity, make_identity
from edgereid.data.cameras import Camera, make_camera, to_modality
from edgereid.data.datasets import SYSU_IR_CAMERAS
from edgereid.data.face_photos import degrade, render_face_image
from edgereid.data.painter import SUPERSAMPLE, Painter, to_canvas
from edgereid.data.render import (
    COCO_KEYPOINTS, clutter_background, crop_placement, keypoints_in_image, make_skeleton, paint_person,
    person_face, random_pose,
)
from edgereid.data.scene import SceneFace, SceneFrame, SceneObject, generate_scene, street_background
from edgereid.data.seeding import Stream, stream
from edgereid.config import check_ranges
from edgereid.errors import ConfigError, EdgeReidError, InputError
from edgereid.fileio import atomic_write_bytes, atomic_write_text
from edgereid.types import FaceBoxes

__all__ = [
    "COCO_KEYPOINTS", "Camera", "FaceSample", "Identity", "PersonSample", "SceneFace", "SceneFrame", "SceneObject",
    "World", "WorldConfig", "WorldSpec",
]

_PLAIN_BACKDROP = (205, 222, 188)  # light sage: far from every clothing colour


@dataclass(frozen=True)
class WorldConfig:
    """Size and seed of a synthetic world; person crops and faces are rendered at these sizes."""

    seed: int = 0
    num_identities: int = 20
    num_cameras: int = 3
    person_height: int = 128
    person_width: int = 64
    face_size: int = 112

    def __post_init__(self) -> None:
        checks = {
            "seed": (self.seed >= 0, "a non-negative integer"),
            "num_identities": (self.num_identities >= 1, "at least 1"),
            "num_cameras": (self.num_cameras >= 1, "at least 1"),
            "person_height": (self.person_height >= 32, "at least 32 pixels"),
            "person_width": (self.person_width >= 16, "at least 16 pixels"),
            "face_size": (self.face_size >= 8, "at least 8 pixels"),
        }
        for name, (ok, expected) in checks.items():
            if not ok:
                raise ConfigError(f"WorldConfig.{name} is out of range", expected=expected,
                                  got=repr(getattr(self, name)), fix=f"set {name} to {expected}")


@dataclass(frozen=True)
class WorldSpec:
    """Which synthetic world and how much footage of it: the one way configs, benchmarks and commands say
    it (the YAML key ``data:`` of the run configs). The seed decides identities, cameras and everything else;
    ``world()`` builds it."""

    RANGES: ClassVar[dict[str, tuple[float, float]]] = {
        "seed": (0, 2**63 - 1), "identities": (1, 100_000), "cameras": (1, 64), "frames_per_camera": (1, 1_000_000),
        "pace": (0.01, 1000.0), "people_per_frame": (1, 100)}

    seed: int = 100
    identities: int = 200
    cameras: int = 6
    frames_per_camera: int = 300
    pace: float = 4.0
    people_per_frame: int = 5

    def __post_init__(self) -> None:
        check_ranges(self)

    def world(self) -> "World":
        return World(WorldConfig(seed=self.seed, num_identities=self.identities, num_cameras=self.cameras))


@dataclass(frozen=True, eq=False)
class PersonSample:
    """A person crop as a camera recorded it, with its ground truth."""

    image: np.ndarray  # uint8 BGR [person_height, person_width, 3]
    keypoints: np.ndarray  # float32 [17, 3]: x, y, visible (0/1), COCO-17 order
    face_box: np.ndarray | None  # float32 [4] x1, y1, x2, y2; None unless seen from the front
    face_landmarks: np.ndarray | None  # float32 [5, 2], InsightFace order; None with face_box
    pid: int
    cam_id: int
    viewpoint: str  # "front", "back" or "side"


@dataclass(frozen=True, eq=False)
class FaceSample:
    """A face crop with its five landmarks (eye, eye, nose, mouth corner, mouth corner; image
    left before image right)."""

    image: np.ndarray  # uint8 BGR [size, size, 3]
    landmarks: np.ndarray  # float32 [5, 2]
    pid: int


class World:
    """Identities, cameras, and everything that can be rendered of them (see the module text)."""

    def __init__(self, config: WorldConfig) -> None:
        self.config = config
        self.identities: list[Identity] = [make_identity(config.seed, pid)
                                           for pid in range(1, config.num_identities + 1)]
        self.cameras: list[Camera] = [make_camera(config.seed, cam_id, config.num_cameras)
                                      for cam_id in range(config.num_cameras)]
        self._backgrounds: dict[tuple[int, int, int], np.ndarray] = {}

    def identity(self, pid: int) -> Identity:
        """The identity numbered ``pid`` (1-based)."""
        if not 1 <= pid <= len(self.identities):
            raise InputError(f"no identity {pid} in this world", got=repr(pid),
                             expected=f"a pid from 1 to {len(self.identities)}")
        return self.identities[pid - 1]

    def camera(self, cam_id: int) -> Camera:
        """The camera numbered ``cam_id`` (0-based)."""
        if not 0 <= cam_id < len(self.cameras):
            raise InputError(f"no camera {cam_id} in this world", got=repr(cam_id),
                             expected=f"a cam_id from 0 to {len(self.cameras) - 1}")
        return self.cameras[cam_id]

    def render_person(self, pid: int, cam_id: int, rng: np.random.Generator, *,
                      clutter: bool = True) -> PersonSample:
        """A detector-style crop of ``pid`` as camera ``cam_id`` records it.

        Random per call: viewpoint (from the camera's preference), gait phase, walking direction,
        the face's variation (expression, head turn and tilt, light, hat or hair over the
        forehead), scale/shift jitter and background clutter; then the camera's effects.
        ``clutter=False`` puts the person on a plain backdrop (for sketches, attribute models).
        """
        identity, camera = self.identity(pid), self.camera(cam_id)
        pose = random_pose(camera.sample_viewpoint(rng), rng)
        skeleton = make_skeleton(identity, pose)
        h, w = self.config.person_height, self.config.person_width
        placement = crop_placement(identity, skeleton, w, h, rng)
        backdrop = (clutter_background(h, w, camera, rng) if clutter
                    else np.full((h, w, 3), _PLAIN_BACKDROP, np.uint8))
        # nearest-neighbour upsampling: the final INTER_AREA reduction restores the backdrop exactly
        canvas = cv2.resize(backdrop, (w * SUPERSAMPLE, h * SUPERSAMPLE), interpolation=cv2.INTER_NEAREST)
        paint_person(Painter(canvas, None, placement.then(to_canvas())), identity, pose, skeleton)
        image = camera.apply(cv2.resize(canvas, (w, h), interpolation=cv2.INTER_AREA), rng)
        face = person_face(identity, pose, skeleton, placement)
        return PersonSample(image=image, keypoints=keypoints_in_image(skeleton, placement, w, h),
                            face_box=None if face is None else face[0],
                            face_landmarks=None if face is None else face[1],
                            pid=pid, cam_id=cam_id, viewpoint=pose.view)

    def render_face(self, pid: int, rng: np.random.Generator, size: int | None = None) -> FaceSample:
        """A high-resolution face crop of ``pid`` (``size`` defaults to ``config.face_size``),
        aligned near the ArcFace template, with per-sample head turn and tilt, light, expression
        and sometimes a hat or hair over the forehead."""
        size = self.config.face_size if size is None else size
        if size < 8:
            raise InputError("face size too small to draw a face", expected="size >= 8", got=str(size))
        image, landmarks = render_face_image(self.identity(pid), size, rng)
        return FaceSample(image=image, landmarks=landmarks, pid=pid)

    def degrade_face(self, face: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
        """A ``size`` x ``size`` low-resolution copy of a face crop (blur, downsample, noise, JPEG),
        as a surveillance camera would record a distant face."""
        if face.dtype != np.uint8 or face.ndim != 3 or face.shape[2] != 3:
            raise InputError("degrade_face needs a BGR face crop", expected="uint8 array [S, S, 3]",
                             got=f"{face.dtype} array of shape {face.shape}")
        if not 1 <= size <= min(face.shape[:2]):
            raise InputError("degrade_face makes faces smaller", got=str(size),
                             expected=f"a size from 1 to {min(face.shape[:2])}")
        return degrade(face, size, rng)

    def to_modality(self, image: np.ndarray, modality: str, rng: np.random.Generator) -> np.ndarray:
        """``image`` as "rgb" (unchanged copy), "ir" (material-dependent intensity) or "sketch"
        (line art on white); always uint8 [H, W, 3]."""
        return to_modality(image, modality, rng)

    def background(self, cam_id: int, frame_size: tuple[int, int] = (360, 640)) -> np.ndarray:
        """The fixed, clean view of camera ``cam_id`` at ``(height, width)`` (before its effects)."""
        camera = self.camera(cam_id)
        key = (cam_id, *frame_size)
        if key not in self._backgrounds:
            rng = stream(self.config.seed, Stream.BACKGROUND, cam_id, *frame_size)
            self._backgrounds[key] = street_background(*frame_size, camera, rng)
        return self._backgrounds[key].copy()

    def scene(self, cam_id: int, num_frames: int, *, frame_size: tuple[int, int] = (360, 640),
              people_per_frame: int = 4, seed_offset: int = 0, pace: float = 1.0) -> Iterator[SceneFrame]:
        """Footage of camera ``cam_id``: people walking across, towards and away from it, at 10
        frames per second, with boxes, keypoints and front faces of everyone shown. ``pace`` > 1
        makes people move that many times further per frame, so short clips see more identities.
        The same (world seed, cam_id, seed_offset, pace) gives the same frames."""
        height, width = frame_size
        if height < 280 or width < 160:
            raise InputError("frame too small for the scene's 80-260 px people",
                             expected="frame_size (height, width) of at least (280, 160)",
                             got=str(frame_size))
        if num_frames < 0 or people_per_frame < 1 or seed_offset < 0 or pace <= 0:
            raise InputError("bad scene arguments", got=f"num_frames={num_frames}, "
                             f"people_per_frame={people_per_frame}, seed_offset={seed_offset}, pace={pace}",
                             expected="num_frames >= 0, people_per_frame >= 1, seed_offset >= 0, pace > 0")
        rng = stream(self.config.seed, Stream.SCENE, cam_id, seed_offset)
        return generate_scene(self.identities, self.camera(cam_id), self.background(cam_id, frame_size),
                              num_frames, people_per_frame, rng, pace)

    def write_market1501(self, root: str | Path, *, images_per_id_per_cam: int = 2,
                         train_fraction: float = 0.5) -> Path:
        """Write person crops in the Market-1501 layout and return ``root``.

        ``bounding_box_train`` holds the first ``train_fraction`` of identities; of the others,
        ``query`` gets one image per (identity, camera) and ``bounding_box_test`` the rest, plus
        one distractor (pid 0000, background) and one junk image (pid -1, a body part) per camera.
        File names follow Market-1501: ``0002_c1s1_000451_01.jpg``.
        """
        root = Path(root)
        folders = {name: root / name for name in ("bounding_box_train", "bounding_box_test", "query")}
        _require_empty(folders.values())
        train_ids, test_ids = self._split_ids(train_fraction)
        rng = stream(self.config.seed, Stream.MARKET)
        frames = _FrameCounter(rng)
        for pid in (*train_ids, *test_ids):
            for cam_id in range(len(self.cameras)):
                for k in range(images_per_id_per_cam):
                    folder = ("bounding_box_train" if pid in train_ids
                              else "query" if k == 0 else "bounding_box_test")
                    image = self.render_person(pid, cam_id, rng).image
                    name = _market_name(pid, cam_id, frames.next(cam_id), k + 1)
                    _write_image(folders[folder] / name, image)
        for cam_id in range(len(self.cameras)):
            for pid, image in ((0, self._distractor(cam_id, rng)), (-1, self._junk(cam_id, rng))):
                name = _market_name(pid, cam_id, frames.next(cam_id), 1)
                _write_image(folders["bounding_box_test"] / name, image)
        return root

    def write_sysu_like(self, root: str | Path, *, images_per_id_per_cam: int = 2,
                        train_fraction: float = 0.5) -> Path:
        """Write person crops in the SYSU-MM01 layout and return ``root``.

        ``cam{n}/{pid:04d}/{k:04d}.jpg`` for every camera, IR cameras recorded as IR and written
        to the folders SYSU uses for IR (cam3, cam6); ``exp/train_id.txt`` and ``exp/test_id.txt``
        list the identities of each split, comma-separated. Needs an RGB and an IR camera.
        """
        root = Path(root)
        numbers = _sysu_folder_numbers(self.cameras)
        folders = [root / f"cam{n}" for n in numbers.values()]
        _require_empty([*folders, root / "exp"])
        train_ids, test_ids = self._split_ids(train_fraction)
        rng = stream(self.config.seed, Stream.SYSU)
        for pid in (*train_ids, *test_ids):
            for cam_id, number in numbers.items():
                for k in range(images_per_id_per_cam):
                    image = self.render_person(pid, cam_id, rng).image
                    _write_image(root / f"cam{number}" / f"{pid:04d}" / f"{k + 1:04d}.jpg", image)
        atomic_write_text(root / "exp" / "train_id.txt", ",".join(map(str, train_ids)) + "\n")
        atomic_write_text(root / "exp" / "test_id.txt", ",".join(map(str, test_ids)) + "\n")
        return root

    def write_faces(self, root: str | Path, *, images_per_id: int = 4,
                    sizes: Sequence[int] = (112, 16)) -> Path:
        """Write face crops and return ``root``: ``hr/{pid:04d}/{k:03d}.png`` rendered at
        ``sizes[0]`` and ``lr{s}/{pid:04d}/{k:03d}.png`` for each further size ``s``, degraded from
        the same HR sample, so equal paths under ``hr`` and ``lr{s}`` form an HR/LR pair."""
        if not sizes or any(s >= sizes[0] for s in sizes[1:]):
            raise InputError("face sizes must start with the HR size, followed by smaller LR sizes",
                             expected="e.g. (112, 16) or (112, 24, 16)", got=repr(tuple(sizes)))
        root = Path(root)
        names = ["hr", *(f"lr{s}" for s in sizes[1:])]
        _require_empty(root / name for name in names)
        rng = stream(self.config.seed, Stream.FACES)
        for identity in self.identities:
            for k in range(1, images_per_id + 1):
                hr = self.render_face(identity.pid, rng, size=sizes[0]).image
                relative = Path(f"{identity.pid:04d}") / f"{k:03d}.png"
                _write_image(root / "hr" / relative, hr)
                for name, size in zip(names[1:], sizes[1:]):
                    _write_image(root / name / relative, self.degrade_face(hr, size, rng))
        return root

    def _split_ids(self, train_fraction: float) -> tuple[list[int], list[int]]:
        """The first ``train_fraction`` of identities train, the rest test; both non-empty."""
        pids = [identity.pid for identity in self.identities]
        if len(pids) < 2 or not 0.0 < train_fraction < 1.0:
            raise ConfigError("cannot split identities into train and test",
                              expected="num_identities >= 2 and 0 < train_fraction < 1",
                              got=f"{len(pids)} identities, train_fraction={train_fraction}")
        n_train = min(max(round(len(pids) * train_fraction), 1), len(pids) - 1)
        return pids[:n_train], pids[n_train:]

    def _distractor(self, cam_id: int, rng: np.random.Generator) -> np.ndarray:
        """A false detection: background only."""
        h, w = self.config.person_height, self.config.person_width
        camera = self.camera(cam_id)
        return camera.apply(clutter_background(h, w, camera, rng), rng)

    def _junk(self, cam_id: int, rng: np.random.Generator) -> np.ndarray:
        """A detection too poor to count: a slice of someone, stretched to the crop size."""
        pid = int(rng.integers(1, len(self.identities) + 1))
        image = self.render_person(pid, cam_id, rng).image
        h, w = image.shape[:2]
        start = int(rng.integers(0, h // 2))
        return cv2.resize(image[start:start + h // 3], (w, h), interpolation=cv2.INTER_LINEAR)


class _FrameCounter:
    """Increasing, camera-specific frame numbers for Market-style file names."""

    def __init__(self, rng: np.random.Generator) -> None:
        self._rng = rng
        self._last: dict[int, int] = {}

    def next(self, cam_id: int) -> int:
        self._last[cam_id] = self._last.get(cam_id, 0) + int(self._rng.integers(1, 60))
        return self._last[cam_id]


def _market_name(pid: int, cam_id: int, frame: int, box: int) -> str:
    """A Market-1501 file name; junk images are written "-1", not "-001"."""
    person = "-1" if pid == -1 else f"{pid:04d}"
    return f"{person}_c{cam_id + 1}s1_{frame:06d}_{box:02d}.jpg"


def _sysu_folder_numbers(cameras: Sequence[Camera]) -> dict[int, int]:
    """World camera id -> SYSU camera folder number: IR cameras on SYSU's IR numbers."""
    ir = [c.cam_id for c in cameras if c.modality == "ir"]
    rgb = [c.cam_id for c in cameras if c.modality != "ir"]
    if not ir or not rgb or len(ir) > len(SYSU_IR_CAMERAS):
        raise ConfigError("a SYSU-like dataset needs RGB and IR cameras",
                          expected=f"at least one RGB and 1-{len(SYSU_IR_CAMERAS)} IR cameras",
                          got=f"{len(rgb)} RGB and {len(ir)} IR cameras",
                          fix="use WorldConfig(num_cameras=4 or more): the last camera is IR")
    rgb_numbers = (n for n in range(1, 100) if n not in SYSU_IR_CAMERAS)
    numbers = {cam_id: number for cam_id, number in zip(ir, SYSU_IR_CAMERAS)}
    numbers.update({cam_id: next(rgb_numbers) for cam_id in rgb})
    return dict(sorted(numbers.items()))


def _require_empty(folders) -> None:
    """Refuse to write into folders that already hold files (mixing two worlds)."""
    for folder in folders:
        if folder.exists() and any(folder.iterdir()):
            raise InputError(f"{folder} already has files in it", expected="an empty or new folder",
                             fix=f"write to another folder, or delete {folder} first")


def _write_image(path: Path, image: np.ndarray) -> None:
    """Encode by extension and write atomically (a symlink already at ``path`` is replaced, never followed)."""
    ok, encoded = cv2.imencode(path.suffix, image)
    if not ok:
        raise EdgeReidError(f"could not encode {path.name}", fix="use a .jpg or .png name")
    atomic_write_bytes(path, encoded.tobytes())


def to_pixel_centres(points: np.ndarray) -> np.ndarray:
    """World (x, y) annotations, where pixel i spans [i, i + 1), in the runtime's convention, where
    pixel i's centre is at i (OpenCV's): subtract half a pixel. Extra columns pass through."""
    out = np.array(points, dtype=np.float32, copy=True)
    out[..., :2] -= 0.5
    return out


def frame_faces(frame: SceneFrame) -> FaceBoxes:
    """The faces of a synthetic frame as the pipeline takes them: boxes and pixel-centre landmarks."""
    if not frame.faces:
        return FaceBoxes(np.zeros((0, 4), np.float32))
    return FaceBoxes(np.stack([f.box for f in frame.faces]),
                     to_pixel_centres(np.stack([f.landmarks for f in frame.faces])))


def frame_boxes(frame: SceneFrame) -> np.ndarray:
    """The person boxes of a synthetic frame, ``[N, 4]`` xyxy."""
    return np.stack([p.box for p in frame.persons]) if frame.persons else np.zeros((0, 4), np.float32)
