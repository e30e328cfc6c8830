"""Training and evaluation crops cut from synthetic-world scenes with the runtime's own preprocessing.

Crops come from the same scenes, boxes and camera effects the demo uses, and pass through
:func:`edgereid.ops.preprocess.preprocess_batch`, so a model trains on exactly the arithmetic it
will be fed at run time. Crops are kept as uint8 ``[N, H, W, 3]`` (BGR) to stay small; keypoints
and face landmarks are mapped into crop pixels. World annotations (pixel edges) are converted to the
runtime's pixel-centre convention with :func:`~edgereid.data.synthetic.to_pixel_centres` first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgereid.card import InputSpec
from edgereid.errors import ConfigError
from edgereid.data.synthetic import WorldSpec, to_pixel_centres
from edgereid.ops.geometry import points_to_input
from edgereid.ops.preprocess import allocate_staging, crop_into, fill_bgr
from edgereid.ops.geometry import plan_crops, validate_boxes
from edgereid.progress import progress as show_progress


@dataclass
class CropSet:
    """Crops with labels: ``images`` uint8 BGR ``[N, H, W, 3]``, ``pids``, ``cams``; keypoints
    ``[N, 17, 3]`` (x, y, visible) in crop pixels for person crops; ``placement`` ``[N, 4]`` (x, y, w, h)
    of each crop's content in the model input (its letterbox bars are zeroed when normalised, as the
    runtime's are: :func:`edgereid.ops.preprocess.normalise_batch`)."""

    images: np.ndarray
    pids: np.ndarray
    cams: np.ndarray
    keypoints: np.ndarray | None = None
    placement: np.ndarray | None = None
    ir_images: np.ndarray | None = None  # the same crops as the world's IR camera would record them

    def __len__(self) -> int:
        return len(self.pids)

    def select(self, rows: np.ndarray) -> "CropSet":
        """The crops at ``rows`` (indices or a mask), every per-crop array alike."""
        return CropSet(*(None if value is None else value[rows] for value in
                         (self.images, self.pids, self.cams, self.keypoints, self.placement, self.ir_images)))

    def with_images(self, images: np.ndarray) -> "CropSet":
        """The same crops and labels with other pixels (another modality of the same crops)."""
        return CropSet(images, self.pids, self.cams, self.keypoints, self.placement, self.ir_images)


def runtime_crops_uint8(spec: InputSpec, frames: list[np.ndarray], plan) -> np.ndarray:
    """The runtime's crops (uint8, before normalisation) for a crop plan, letterbox bars in the
    (rounded) mean colour."""
    staging = allocate_staging(spec, len(plan))
    staging[:] = np.rint(fill_bgr(spec)).astype(np.uint8)
    return crop_into(staging, frames, plan, spec)


def scene_crops(data: WorldSpec, person_spec: InputSpec | None = None, face_spec: InputSpec | None = None,
                progress: bool = True, ir_view: bool = False) -> tuple[CropSet | None, CropSet | None]:
    """Person crops (with keypoints) for ``person_spec`` and aligned face crops for ``face_spec``. With
    ``ir_view`` the person crops also carry ``ir_images``: the same boxes cut from the scene before the camera's
    effects and recorded by the world's IR camera (IR intensity first, then its gain, resolution, blur, noise
    and JPEG), the view an IR camera would have had of the same moment."""
    world = data.world()
    ir_camera = next((camera for camera in world.cameras if camera.modality == "ir"), None)
    if ir_view and ir_camera is None:
        raise ConfigError(f"world seed {data.seed} with {data.cameras} cameras has no IR camera to render IR views",
                          fix="use at least 4 cameras (the last one is IR)")
    ir_rng = np.random.default_rng((data.seed, 19))
    people: list[CropSet] = []
    faces: list[CropSet] = []
    cams = range(data.cameras)
    if progress:
        cams = show_progress(cams, desc=f"rendering world seed {data.seed}", unit="camera")
    for cam in cams:
        for frame in world.scene(cam, data.frames_per_camera, pace=data.pace, people_per_frame=data.people_per_frame):
            if person_spec is not None and frame.persons:
                people.append(_person_crops(frame, person_spec, ir_camera if ir_view else None, ir_rng))
            if face_spec is not None and frame.faces:
                faces.append(_face_crops(frame, face_spec))
    return (concat_crops(people) if person_spec is not None else None,
            concat_crops(faces) if face_spec is not None else None)


def rendered_face_crops(data: WorldSpec, spec: InputSpec, per_identity: int, sizes: tuple[int, int] = (12, 32),
                        progress: bool = True) -> CropSet:
    """Extra face crops: ``per_identity`` high-resolution renders of each identity, degraded to a random
    12-32 px and aligned by their landmarks exactly as the runtime aligns scene faces."""
    world = data.world()
    rng = np.random.default_rng((data.seed, 7))
    parts = []
    identities = world.identities
    if progress:
        identities = show_progress(identities, desc="rendering faces", unit="identity")
    for identity in identities:
        for _ in range(per_identity):
            sample = world.render_face(identity.pid, rng)
            size = int(rng.integers(sizes[0], sizes[1] + 1))
            small = world.degrade_face(sample.image, size, rng)
            scaled = sample.landmarks[None] * (size / sample.image.shape[0])  # pixel edges scale exactly
            landmarks = to_pixel_centres(scaled).astype(np.float64)
            boxes = np.array([[0, 0, size, size]], np.int32)
            plan = plan_crops(np.zeros(1, int), boxes, spec, landmarks)
            parts.append(CropSet(runtime_crops_uint8(spec, [small], plan), np.array([identity.pid]), np.array([-1]),
                                 placement=plan.placement))
    return concat_crops(parts)


def _person_crops(frame, spec: InputSpec, ir_camera=None, rng: np.random.Generator | None = None) -> CropSet:
    boxes = validate_boxes(np.stack([p.box for p in frame.persons]), frame.frame.shape)
    plan = plan_crops(np.zeros(len(boxes), int), boxes, spec)
    keypoints = to_pixel_centres(np.stack([p.keypoints for p in frame.persons])).astype(np.float64)
    xy = points_to_input(keypoints[..., :2], plan.to_frame)
    ir = None
    if ir_camera is not None:  # the whole frame recorded by the IR camera, then cut like the RGB crops
        ir = runtime_crops_uint8(spec, [ir_camera.apply(frame.clean, rng)], plan)
    return CropSet(runtime_crops_uint8(spec, [frame.frame], plan), np.array([p.pid for p in frame.persons]),
                   np.full(len(boxes), frame.cam_id), np.concatenate([xy, keypoints[..., 2:]], -1).astype(np.float32),
                   plan.placement, ir)


def _face_crops(frame, spec: InputSpec) -> CropSet:
    boxes = validate_boxes(np.stack([f.box for f in frame.faces]), frame.frame.shape)
    landmarks = to_pixel_centres(np.stack([f.landmarks for f in frame.faces])).astype(np.float64)
    plan = plan_crops(np.zeros(len(boxes), int), boxes, spec, landmarks)
    return CropSet(runtime_crops_uint8(spec, [frame.frame], plan), np.array([f.pid for f in frame.faces]),
                   np.full(len(boxes), frame.cam_id), placement=plan.placement)


def concat_crops(parts: list[CropSet]) -> CropSet:
    """One crop set from several (keypoints and placements kept only when every part has them)."""
    def joined(name: str) -> np.ndarray | None:
        values = [getattr(p, name) for p in parts if getattr(p, name) is not None]
        return np.concatenate(values) if len(values) == len(parts) else None

    return CropSet(*(joined(name) for name in ("images", "pids", "cams", "keypoints", "placement", "ir_images")))


def crops_from_cameras(crops: CropSet, cameras: tuple[int, ...]) -> CropSet:
    """The crops seen by ``cameras`` (the source domains of a domain-generalisation run); all when empty."""
    if not cameras:
        return crops
    keep = np.isin(crops.cams, cameras)
    if not keep.any():
        raise ConfigError("no training crops from the chosen train_cameras", got=str(cameras),
                          expected=f"camera ids among {sorted(set(crops.cams.tolist()))}")
    return crops.select(keep)
