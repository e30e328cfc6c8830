"""The pipeline: frames and boxes from many cameras in, identities, keypoints and face matches out.

``submit`` validates at once (bad input fails in the caller's thread) and queues the frame; a worker
thread takes batches from the :class:`~edgereid.runtime.batcher.Batcher` (flush at ``max_batch``
crops or ``max_wait_ms``), runs every configured model once per batch across cameras, matches
against the galleries, and hands :class:`~edgereid.types.FrameResult` objects to ``results``.
``process`` is the synchronous form on the same batch path. No torch is imported here.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from edgereid.config import build, load_yaml
from edgereid.errors import ConfigError, InputError
from edgereid.gallery import Gallery
from edgereid.runtime.backends import load_backend
from edgereid.runtime.batcher import DROP_POLICIES, Batcher, WorkItem
from edgereid.runtime.model import CropModel, CropOutputs, crop_model_for
from edgereid.ops.geometry import check_landmarks_in_boxes, validate_boxes, validate_landmarks
from edgereid.ops.preprocess import validate_frame
from edgereid.types import FaceBoxes, Faces, FrameResult, Persons

MODALITIES = ("rgb", "ir")


@dataclass(frozen=True)
class CameraConfig:
    """What a camera sees: ``rgb`` or ``ir`` (IR cameras use ``reid_ir_model`` when one is given)."""

    modality: str = "rgb"

    def __post_init__(self) -> None:
        if self.modality not in MODALITIES:
            raise ConfigError("unknown camera modality", expected=str(MODALITIES), got=repr(self.modality))


@dataclass(frozen=True)
class PipelineConfig:
    """Models (ONNX files with cards), galleries, batching and queue policy, cameras."""

    reid_model: str | None = None
    reid_ir_model: str | None = None  # requires reid_model; used for cameras declared ir
    keypoint_model: str | None = None
    face_model: str | None = None
    reid_gallery: str | None = None
    face_gallery: str | None = None
    min_face_size: int = 8  # px (shorter box side); smaller faces are skipped and flagged too_small
    max_batch: int = 32
    max_wait_ms: float = 10.0
    queue_size: int = 64
    drop_policy: str = "block"
    providers: tuple[str, ...] = ("CPUExecutionProvider",)
    threads: int | None = None
    cameras: dict[str, CameraConfig] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.drop_policy not in DROP_POLICIES:
            raise ConfigError("unknown drop_policy", expected=str(DROP_POLICIES), got=repr(self.drop_policy))
        if not (self.reid_model or self.keypoint_model or self.face_model):
            raise ConfigError("the pipeline has no model", fix="set reid_model, keypoint_model or face_model")

    @classmethod
    def load(cls, source: "PipelineConfig | dict[str, Any] | str | Path") -> "PipelineConfig":
        """From a config object, a dict, or a YAML file; unknown keys are errors."""
        if isinstance(source, PipelineConfig):
            return source
        data = source if isinstance(source, dict) else load_yaml(source)
        return build(cls, data, "pipeline config")


@dataclass
class _Frame:
    """A validated submission, carried through the batcher."""

    frame: np.ndarray
    boxes: np.ndarray
    faces: np.ndarray
    face_landmarks: np.ndarray | None
    camera_id: str
    timestamp: float


class Pipeline:
    """Batched multi-camera inference; see the module docstring. Use as a context manager."""

    def __init__(self, config: PipelineConfig | dict[str, Any] | str | Path, *,
                 reid_gallery: Gallery | None = None, face_gallery: Gallery | None = None) -> None:
        self.config = PipelineConfig.load(config)
        cfg = self.config
        self.models: dict[str, CropModel] = {}
        for role in ("reid_model", "reid_ir_model", "keypoint_model", "face_model"):
            path = getattr(cfg, role)
            if path:
                backend = load_backend(path, providers=cfg.providers, threads=cfg.threads)
                self.models[role] = crop_model_for(backend, cfg.max_batch)
        self._check_roles()
        self._reid_gallery = self._gallery(reid_gallery, cfg.reid_gallery, "reid_model")
        self._face_gallery = self._gallery(face_gallery, cfg.face_gallery, "face_model")
        self.batcher = Batcher(cfg.max_batch, cfg.max_wait_ms, cfg.queue_size, cfg.drop_policy)
        self._results: queue.Queue[FrameResult] = queue.Queue()
        self._sequence = 0
        self._completed = 0
        self._abandoned = 0  # sequence numbers whose put() timed out
        self._error: BaseException | None = None
        self._lock = threading.Lock()
        self._run_lock = threading.Lock()  # the models' batch buffers serve one batch at a time
        self._worker: threading.Thread | None = None

    def _check_roles(self) -> None:
        expected = {"reid_model": "reid", "reid_ir_model": "reid", "keypoint_model": "keypoints",
                    "face_model": "face"}
        for role, model in self.models.items():
            if model.task != expected[role]:
                raise ConfigError(f"{role} is a '{model.task}' model", expected=f"a '{expected[role]}' model",
                                  got=str(getattr(self.config, role)))
        if "reid_ir_model" in self.models:
            rgb, ir = self.models["reid_model"].card, self.models["reid_ir_model"].card
            if rgb.embedding_dim != ir.embedding_dim:
                raise ConfigError("reid_ir_model must embed into the same space as reid_model",
                                  expected=f"{rgb.embedding_dim}-d", got=f"{ir.embedding_dim}-d")
        ir_cameras = sorted(c for c, cam in self.config.cameras.items() if cam.modality == "ir")
        if ir_cameras and "reid_model" in self.models and "reid_ir_model" not in self.models:
            raise ConfigError(f"cameras {ir_cameras} are IR but no reid_ir_model is configured",
                              fix="set reid_ir_model, or declare those cameras rgb to run the RGB model on them")

    @property
    def reid_gallery(self) -> Gallery | None:
        """The ReID gallery persons are matched against (assigning one checks its embedding space)."""
        return self._reid_gallery

    @reid_gallery.setter
    def reid_gallery(self, gallery: Gallery | None) -> None:
        self._reid_gallery = self._gallery(gallery, None, "reid_model")

    @property
    def face_gallery(self) -> Gallery | None:
        """The face gallery faces are matched against (assigning one checks its embedding space)."""
        return self._face_gallery

    @face_gallery.setter
    def face_gallery(self, gallery: Gallery | None) -> None:
        self._face_gallery = self._gallery(gallery, None, "face_model")

    def _gallery(self, given: Gallery | None, path: str | None, role: str) -> Gallery | None:
        """The gallery object given, else the one at ``path``; either must match the role's model."""
        if given is None and path is None:
            return None
        if role not in self.models:
            raise ConfigError(f"a gallery was given for {role}, which is not configured")
        card = self.models[role].card
        if given is None:
            return Gallery.load(path, card=card)
        given.check_compatible(card, f"the {role.split('_')[0]} gallery passed to Pipeline")
        return given

    # -- submission -----------------------------------------------------------------------------

    def _validate(self, frame: np.ndarray, boxes: Any, camera_id: str, timestamp: float,
                  faces: FaceBoxes | np.ndarray | None) -> _Frame:
        camera_id = str(camera_id)
        if self.config.cameras and camera_id not in self.config.cameras:
            raise InputError(f"unknown camera '{camera_id}'", expected=str(sorted(self.config.cameras)),
                             fix="declare the camera under 'cameras' in the pipeline config")
        frame = validate_frame(frame)
        person_boxes = validate_boxes(boxes, frame.shape)
        face_input = faces if isinstance(faces, FaceBoxes) else FaceBoxes(
            np.zeros((0, 4)) if faces is None else faces)
        face_boxes = validate_boxes(face_input.boxes, frame.shape, "face boxes")
        landmarks = None
        if face_input.landmarks is not None:
            landmarks = validate_landmarks(face_input.landmarks, len(face_boxes))
            check_landmarks_in_boxes(landmarks, face_boxes)
        if len(face_boxes) and "face_model" not in self.models:
            raise InputError("faces were given but no face_model is configured",
                             fix="set face_model in the pipeline config or submit faces=None")
        return _Frame(frame, person_boxes, face_boxes, landmarks, camera_id, float(timestamp))

    def submit(self, frame: np.ndarray, boxes: Any, camera_id: str, timestamp: float,
               faces: FaceBoxes | np.ndarray | None = None, timeout: float | None = None) -> int:
        """Queue one frame with its person boxes (and face boxes); returns its sequence number.

        With ``drop_policy: block`` this waits for room (up to ``timeout`` s, then raises
        ``TimeoutError``); with ``drop_oldest`` it never waits and the oldest queued frame is dropped.
        """
        if self._error is not None:
            raise RuntimeError("the pipeline worker failed") from self._error
        item = self._validate(frame, boxes, camera_id, timestamp, faces)
        item.frame = item.frame.copy()  # decoders reuse their buffers; the queued frame must not change
        self._ensure_worker()
        work = WorkItem(self._next_sequence(), len(item.boxes) + len(item.faces), time.monotonic(), item)
        if not self.batcher.put(work, timeout):
            with self._lock:
                self._abandoned += 1
            raise TimeoutError(f"the pipeline queue stayed full for {timeout} s")
        return work.sequence

    def _next_sequence(self) -> int:
        with self._lock:
            self._sequence += 1
            return self._sequence - 1

    def results(self, wait: bool = False, timeout: float | None = None) -> Iterator[FrameResult]:
        """Yield finished frames. ``wait=True`` flushes and yields until every submitted frame is done."""
        if wait:
            self.batcher.flush()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self._raise_worker_error()
            try:
                yield self._results.get_nowait()
                continue
            except queue.Empty:
                pass
            if not wait:
                return
            if self._pending() == 0:
                # the worker queues results before counting them: take what it queued meanwhile
                while not self._results.empty():
                    yield self._results.get_nowait()
                return
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return
            try:
                yield self._results.get(timeout=min(0.05, remaining) if remaining else 0.05)
            except queue.Empty:
                self.batcher.flush()

    def _pending(self) -> int:
        with self._lock:
            return self._sequence - self._completed - self._abandoned - self.batcher.stats.dropped

    def process(self, frames: Sequence[np.ndarray], boxes: Sequence[Any], camera_ids: Sequence[str] | str,
                timestamps: Sequence[float] | None = None,
                faces: Sequence[FaceBoxes | np.ndarray | None] | None = None) -> list[FrameResult]:
        """Synchronous form: every frame through the same batch path, results in input order."""
        count = len(frames)
        cams = [camera_ids] * count if isinstance(camera_ids, str) else list(camera_ids)
        stamps = list(timestamps) if timestamps is not None else [0.0] * count
        face_list = list(faces) if faces is not None else [None] * count
        if not (len(boxes) == len(cams) == len(stamps) == len(face_list) == count):
            raise InputError("process() needs one entry per frame in every argument",
                             expected=f"{count} boxes, camera ids, timestamps and faces")
        items = []
        for i in range(count):
            item = self._validate(frames[i], boxes[i], cams[i], stamps[i], face_list[i])
            items.append(WorkItem(self._next_sequence(), len(item.boxes) + len(item.faces), time.monotonic(), item))
        results: list[FrameResult] = []
        batch: list[WorkItem] = []
        for item in items:
            if batch and sum(b.crops for b in batch) + item.crops > self.config.max_batch:
                results += self._run_batch(batch)
                batch = []
            batch.append(item)
        if batch:
            results += self._run_batch(batch)
        with self._lock:  # process() shares the numbering, so it counts as completed work too
            self._completed += len(items)
        return results

    # -- the batch path ---------------------------------------------------------------------------

    def _ensure_worker(self) -> None:
        with self._lock:
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, name="edgereid-pipeline", daemon=True)
                self._worker.start()

    def _work(self) -> None:
        try:
            while (batch := self.batcher.get_batch()) is not None:
                for result in self._run_batch(batch):
                    self._results.put(result)
                with self._lock:
                    self._completed += len(batch)
        except BaseException as exc:  # surfaced to the caller by results()/submit()
            self._error = exc

    def _raise_worker_error(self) -> None:
        if self._error is not None:
            raise RuntimeError("the pipeline worker failed") from self._error

    def _run_batch(self, batch: list[WorkItem]) -> list[FrameResult]:
        with self._run_lock:
            return self._run_batch_locked(batch)

    def _run_batch_locked(self, batch: list[WorkItem]) -> list[FrameResult]:
        frames_in: list[_Frame] = [w.payload for w in batch]
        frames = [f.frame for f in frames_in]
        person_index = np.concatenate([np.full(len(f.boxes), i) for i, f in enumerate(frames_in)]).astype(int)
        person_boxes = np.concatenate([f.boxes for f in frames_in]).reshape(-1, 4)
        persons = self._run_persons(frames, frames_in, person_index, person_boxes)
        faces = self._run_faces(frames, frames_in)
        done = time.monotonic()
        results = []
        for i, (work, item) in enumerate(zip(batch, frames_in)):
            modality = self._modality(item.camera_id)
            results.append(FrameResult(
                sequence=work.sequence, camera_id=item.camera_id, timestamp=item.timestamp,
                persons=_select_persons(persons, person_index == i, item.boxes),
                faces=_select_faces(faces, i, item.faces), modality=modality,
                latency_ms=(done - work.submitted_at) * 1000.0))
        return results

    def _modality(self, camera_id: str) -> str:
        camera = self.config.cameras.get(camera_id)
        return camera.modality if camera else "rgb"

    def _run_persons(self, frames: list[np.ndarray], items: list[_Frame], index: np.ndarray,
                     boxes: np.ndarray) -> dict[str, Any]:
        out: dict[str, Any] = {}
        reid = self.models.get("reid_model")
        if reid is not None:
            ir_model = self.models.get("reid_ir_model")
            is_ir = np.array([ir_model is not None and self._modality(items[i].camera_id) == "ir"
                              for i in index], dtype=bool)
            embeddings = np.zeros((len(boxes), reid.card.embedding_dim), dtype=np.float32)
            for model, mask in ((reid, ~is_ir), (ir_model, is_ir)):
                if model is not None and mask.any():
                    embeddings[mask] = model.run(frames, model.plan(index[mask], boxes[mask])).embeddings
            out["embeddings"] = embeddings
            out["identities"], out["scores"] = _match(self.reid_gallery, embeddings)
        keypoints = self.models.get("keypoint_model")
        if keypoints is not None:
            out["keypoints"] = keypoints.run(frames, keypoints.plan(index, boxes))
            out["joint_names"] = (keypoints.card.readout.joint_names if keypoints.card.readout
                                  else keypoints.card.joint_names)
        return out

    def _run_faces(self, frames: list[np.ndarray], items: list[_Frame]) -> dict[str, Any]:
        """Face embeddings and matches; faces below ``min_face_size`` are skipped (zero embedding,
        no identity, NaN score, flagged ``too_small``) rather than matched on a few pixels."""
        model = self.models.get("face_model")
        if model is None:
            return {}
        embeddings = [np.zeros((len(f.faces), model.card.embedding_dim), np.float32) for f in items]
        usable = [np.minimum(f.faces[:, 2] - f.faces[:, 0], f.faces[:, 3] - f.faces[:, 1]) >= self.config.min_face_size
                  for f in items]
        for aligned in (True, False):
            chosen = [i for i, f in enumerate(items) if (f.face_landmarks is not None) == aligned and usable[i].any()]
            if not chosen:
                continue
            index = np.concatenate([np.full(int(usable[i].sum()), i) for i in chosen]).astype(int)
            boxes = np.concatenate([items[i].faces[usable[i]] for i in chosen])
            landmarks = np.concatenate([items[i].face_landmarks[usable[i]] for i in chosen]) if aligned else None
            result = model.run(frames, model.plan(index, boxes, landmarks)).embeddings
            for i in chosen:
                embeddings[i][usable[i]] = result[index == i]
        flat = np.concatenate(embeddings) if embeddings else np.zeros((0, model.card.embedding_dim), np.float32)
        keep = np.concatenate(usable) if usable else np.zeros(0, bool)
        identities: list[str | None] = [None] * len(flat)
        scores = np.full(len(flat), np.nan, np.float32)
        matched, matched_scores = _match(self.face_gallery, flat[keep])
        for row, identity, value in zip(np.flatnonzero(keep), matched, matched_scores):
            identities[row], scores[row] = identity, value
        offsets = np.cumsum([0] + [len(e) for e in embeddings])
        return {"embeddings": embeddings, "identities": identities, "scores": scores, "offsets": offsets,
                "too_small": [~u for u in usable]}

    # -- lifecycle --------------------------------------------------------------------------------

    @property
    def stats(self) -> dict[str, int]:
        """Frames submitted (queued), completed (by the worker or process()), dropped, and worker batches."""
        s = self.batcher.stats
        return {"submitted": s.submitted, "completed": self._completed, "dropped": s.dropped,
                "batches": s.batches}

    def close(self) -> None:
        """Finish queued work, stop the worker and close every model (releasing sessions and device
        memory); results stay readable."""
        self.batcher.close()
        if self._worker is not None:
            self._worker.join()
        with self._run_lock:
            for model in self.models.values():
                model.close()

    def __enter__(self) -> "Pipeline":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _match(gallery: Gallery | None, embeddings: np.ndarray) -> tuple[list[str | None], np.ndarray]:
    if gallery is None or len(gallery) == 0 or len(embeddings) == 0:
        return [None] * len(embeddings), np.zeros(len(embeddings), dtype=np.float32)
    matches = gallery.match(embeddings)
    return [m.identity for m in matches], np.array([m.score for m in matches], dtype=np.float32)


def _select_persons(out: dict[str, Any], mask: np.ndarray, boxes: np.ndarray) -> Persons:
    fields: dict[str, Any] = {"boxes": boxes.astype(np.float32)}
    if "embeddings" in out:
        fields["embeddings"] = out["embeddings"][mask]
        fields["identities"] = tuple(i for i, keep in zip(out["identities"], mask) if keep)
        fields["scores"] = out["scores"][mask]
    if "keypoints" in out:
        kp: CropOutputs = out["keypoints"]
        fields["keypoints"] = kp.keypoints[mask]
        fields["keypoint_confidence"] = kp.keypoint_confidence[mask]
        if kp.joints is not None:
            fields["joints"] = kp.joints[mask]
            fields["joint_names"] = out["joint_names"]
    return Persons(**fields)


def _select_faces(out: dict[str, Any], i: int, boxes: np.ndarray) -> Faces:
    if not out:
        return Faces(boxes.astype(np.float32))
    start, stop = out["offsets"][i], out["offsets"][i + 1]
    return Faces(boxes.astype(np.float32), out["embeddings"][i], tuple(out["identities"][start:stop]),
                 out["scores"][start:stop], out["too_small"][i])
