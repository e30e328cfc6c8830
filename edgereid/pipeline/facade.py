"""The pipeline: frames and boxes from many cameras in, identities, keypoints and face matches out.

``submit`` validates at once (bad input fails in the caller's thread) and queues the frame; a worker
thread takes batches from the :class:`~edgereid.pipeline.batcher.Batcher` (flush at ``max_batch`` crops
or ``max_wait_ms``), runs them through the :class:`~edgereid.pipeline.execution.BatchExecutor`, and hands
:class:`~edgereid.types.FrameResult` objects to ``results``. ``process`` is the synchronous form on the
same batch path and the same release rule. No torch is imported here.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from edgereid.errors import ConfigError, InputError, PipelineClosedError
from edgereid.gallery import Gallery
from edgereid.ops.geometry import as_box_array, check_landmarks_in_boxes, validate_boxes, validate_landmarks
from edgereid.ops.preprocess import validate_frame
from edgereid.pipeline.batcher import Batcher, WorkItem, take_batch
from edgereid.interop import detector_boxes
from edgereid.pipeline.config import MODEL_ROLES, CameraConfig, PipelineConfig
from edgereid.pipeline.execution import BatchExecutor, Submission, as_track_ids
from edgereid.runtime.backends import load_backend
from edgereid.runtime.model import CropModel, crop_model_for
from edgereid.types import FaceBoxes, FrameResult


class _GallerySlot:
    """The gallery a model role's results are matched against; assigning one checks its embedding space
    against that model's card (None detaches it)."""

    def __init__(self, role: str) -> None:
        self.role = role

    def __set_name__(self, owner: type, name: str) -> None:
        self.attribute = f"_{name}"

    def __get__(self, pipeline: "Pipeline | None", owner: type | None = None) -> Any:
        return self if pipeline is None else getattr(pipeline, self.attribute)

    def __set__(self, pipeline: "Pipeline", gallery: Gallery | None) -> None:
        setattr(pipeline, self.attribute, pipeline._gallery(gallery, None, self.role))


class Pipeline:
    """Batched multi-camera inference; see the module docstring. Use as a context manager: leaving it
    finishes queued work and closes every model."""

    reid_gallery = _GallerySlot("reid_model")  # persons are matched against it
    face_gallery = _GallerySlot("face_model")  # faces are matched against it

    def __init__(self, config: PipelineConfig | dict[str, Any] | str | Path, *,
                 reid_gallery: Gallery | None = None, face_gallery: Gallery | None = None) -> None:
        self.config = PipelineConfig.load(config)
        cfg = self.config
        self.models: dict[str, CropModel] = {}
        try:
            for role in MODEL_ROLES:
                path = getattr(cfg, role)
                if path:
                    backend = load_backend(path, backend=cfg.backend, providers=cfg.providers, threads=cfg.threads,
                                           precision=cfg.precision)
                    self.models[role] = crop_model_for(backend, cfg.max_batch)
            self._check_roles()
            self._reid_gallery = self._gallery(reid_gallery, cfg.reid_gallery, "reid_model")
            self._face_gallery = self._gallery(face_gallery, cfg.face_gallery, "face_model")
        except BaseException:
            for model in self.models.values():  # a half-built pipeline releases what it opened
                model.close()
            raise
        self.executor = BatchExecutor(self.models, cfg)
        self.batcher = Batcher(cfg.max_batch, cfg.max_wait_ms, cfg.queue_size, cfg.drop_policy,
                               capacity_bytes=int(cfg.queue_megabytes * (1 << 20)))
        self._results: queue.Queue[FrameResult] = queue.Queue(maxsize=cfg.results_size)
        self._results_dropped = 0
        self._sequence = 0
        self._completed = 0
        self._abandoned = 0  # sequence numbers whose put() timed out
        self._error: BaseException | None = None
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None
        self._closed = False

    def _check_roles(self) -> None:
        for role, model in self.models.items():
            if model.task != MODEL_ROLES[role]:
                raise ConfigError(f"{role} is a '{model.task}' model", expected=f"a '{MODEL_ROLES[role]}' model",
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

    def _gallery(self, given: Gallery | None, path: str | None, role: str) -> Gallery | None:
        """The gallery object given, else the one at ``path``; either must match the role's model."""
        if given is None and path is None:
            return None
        if role not in self.models:
            raise ConfigError(f"a gallery was given for {role}, which is not configured")
        card = self.models[role].card
        if given is None:
            return Gallery.open(path, card=card)
        given.check_compatible(card, f"the {role.split('_')[0]} gallery passed to Pipeline")
        return given

    # -- submission -----------------------------------------------------------------------------

    def _validate(self, frame: np.ndarray, boxes: Any, camera_id: str, timestamp: float,
                  faces: FaceBoxes | np.ndarray | None, box_format: str = "xyxy", tag: Any = None,
                  track_ids: Any = None, face_track_ids: Any = None) -> Submission:
        if not isinstance(camera_id, str):
            raise InputError("camera ids are strings", expected="e.g. '0' or 'front'", got=type(camera_id).__name__,
                             fix="pass str(camera) as the camera id")
        try:
            timestamp = float(timestamp)
        except (TypeError, ValueError):
            raise InputError("the timestamp is not a number", expected="seconds as a float",
                             got=f"{type(timestamp).__name__}: {str(timestamp)[:40]}") from None
        if not np.isfinite(timestamp):
            raise InputError("the timestamp is not finite", got=str(timestamp))
        if self.config.cameras and camera_id not in self.config.cameras:
            raise InputError(f"unknown camera '{camera_id}'", expected=str(sorted(self.config.cameras)),
                             fix="declare the camera under 'cameras' in the pipeline config")
        frame = validate_frame(frame)
        if self.config.cameras.get(camera_id, CameraConfig()).color_order == "rgb":
            frame = np.ascontiguousarray(frame[..., ::-1])  # the runtime's frames are BGR
        boxes = detector_boxes(boxes, box_format)
        person_boxes = validate_boxes(boxes, frame.shape)
        if isinstance(faces, FaceBoxes):
            face_input = FaceBoxes(detector_boxes(faces.boxes, box_format, None), faces.landmarks)
        else:
            face_input = FaceBoxes(np.zeros((0, 4)) if faces is None
                                   else as_box_array(detector_boxes(faces, box_format, None), "face boxes"))
        if len(person_boxes) + len(face_input.boxes) > self.config.max_boxes_per_frame:
            raise InputError("too many boxes in one frame", expected=f"at most max_boxes_per_frame = "
                             f"{self.config.max_boxes_per_frame} person and face boxes",
                             got=f"{len(person_boxes)} persons, {len(face_input.boxes)} faces",
                             fix="drop low-confidence detections, or raise max_boxes_per_frame in the config")
        face_boxes = validate_boxes(face_input.boxes, frame.shape, "face boxes")
        landmarks = None
        if face_input.landmarks is not None:
            landmarks = validate_landmarks(face_input.landmarks, len(face_boxes))
            # against the boxes as submitted: a face cut by the frame edge keeps landmarks inside its own box
            check_landmarks_in_boxes(landmarks, face_input.boxes.astype(np.float64))
        if len(face_boxes) and "face_model" not in self.models:
            raise InputError("faces were given but no face_model is configured",
                             fix="set face_model in the pipeline config or submit faces=None")
        submitted = np.asarray(boxes, np.float32).reshape(-1, 4) if len(person_boxes) else np.zeros((0, 4), np.float32)
        return Submission(frame, person_boxes, face_boxes, landmarks, camera_id, timestamp, submitted,
                          face_input.boxes.reshape(-1, 4), tag, as_track_ids(track_ids, len(person_boxes), "track_ids"),
                          as_track_ids(face_track_ids, len(face_boxes), "face_track_ids"))

    def _work_item(self, submission: Submission) -> WorkItem:
        with self._lock:
            self._sequence += 1
            sequence = self._sequence - 1
        return WorkItem(sequence, submission.crops, time.monotonic(), submission, submission.frame.nbytes)

    def submit(self, frame: np.ndarray, boxes: Any, camera_id: str, timestamp: float,
               faces: FaceBoxes | np.ndarray | None = None, timeout: float | None = None, *,
               box_format: str = "xyxy", tag: Any = None, track_ids: Any = None, face_track_ids: Any = None) -> int:
        """Queue one frame with its person boxes (and face boxes); returns its sequence number.

        ``boxes`` may be an ``[N, 4]`` array or list, a ``supervision.Detections``, an Ultralytics
        ``Boxes``/``Results`` (persons, COCO class 0, are kept) or a torch tensor, in ``box_format`` ``xyxy``,
        ``xywh`` or ``cxcywh`` (:mod:`edgereid.interop`); ``tag`` comes back on the frame's result.
        ``track_ids`` (one integer per person box kept, -1 for none) and ``face_track_ids`` (per face) come from
        the caller's tracker, per camera: a tracked crop is embedded only when its track is new or has changed
        (config ``track_reuse``, :mod:`edgereid.pipeline.tracks`), else its track's embedding is reused.

        With ``drop_policy: block`` this waits for room (up to ``timeout`` s, then raises
        ``TimeoutError``); with ``drop_oldest`` it never waits and the oldest queued frame is dropped.
        """
        self._raise_worker_error()
        if self._closed:
            raise PipelineClosedError("the pipeline is closed", fix="open a new Pipeline")
        submission = self._validate(frame, boxes, camera_id, timestamp, faces, box_format, tag, track_ids,
                                    face_track_ids)
        submission.frame = submission.frame.copy()  # decoders reuse their buffers; the queued frame must not change
        self._ensure_worker()
        work = self._work_item(submission)
        if not self.batcher.put(work, timeout):
            with self._lock:
                self._abandoned += 1
            raise TimeoutError(f"the pipeline queue stayed full for {timeout} s")
        return work.sequence

    def results(self, wait: bool = False, timeout: float | None = None) -> Iterator[FrameResult]:
        """Yield finished frames. ``wait=True`` releases what is queued now and yields until every submitted
        frame is done (frames submitted meanwhile follow the normal batching rules)."""
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
                pass

    def forget_tracks(self, camera_id: str | None = None) -> None:
        """Forget the tracks remembered for embedding reuse (all cameras, or one): call it when a camera's
        tracker restarts and its ids start over, or before replaying footage."""
        self.executor.forget_tracks(camera_id)

    def _pending(self) -> int:
        with self._lock:
            return self._sequence - self._completed - self._abandoned - self.batcher.stats.dropped

    def process(self, frames: Sequence[np.ndarray], boxes: Sequence[Any], camera_ids: Sequence[str] | str,
                timestamps: Sequence[float] | None = None,
                faces: Sequence[FaceBoxes | np.ndarray | None] | None = None, *, box_format: str = "xyxy",
                tags: Sequence[Any] | None = None, track_ids: Sequence[Any] | None = None,
                face_track_ids: Sequence[Any] | None = None) -> list[FrameResult]:
        """Synchronous form: every frame through the same batch path, results in input order (``box_format``,
        and one ``tag``, ``track_ids`` and ``face_track_ids`` entry per frame as in :meth:`submit`)."""
        count = len(frames)
        if not isinstance(camera_ids, (str, list, tuple)):
            raise InputError("camera_ids must be one id for every frame or one per frame",
                             expected="a str, or a list of str", got=type(camera_ids).__name__)
        cams = [camera_ids] * count if isinstance(camera_ids, str) else list(camera_ids)
        stamps = list(timestamps) if timestamps is not None else [0.0] * count
        face_list = list(faces) if faces is not None else [None] * count
        tag_list = list(tags) if tags is not None else [None] * count
        tracks = list(track_ids) if track_ids is not None else [None] * count
        face_tracks = list(face_track_ids) if face_track_ids is not None else [None] * count
        if not (len(boxes) == len(cams) == len(stamps) == len(face_list) == len(tag_list) == len(tracks)
                == len(face_tracks) == count):
            raise InputError("process() needs one entry per frame in every argument",
                             expected=f"{count} boxes, camera ids, timestamps, faces, tags and track ids")
        pending = deque(self._work_item(self._validate(frames[i], boxes[i], cams[i], stamps[i], face_list[i],
                                                       box_format, tag_list[i], tracks[i], face_tracks[i]))
                        for i in range(count))
        results: list[FrameResult] = []
        while pending:
            results += self.executor.run(take_batch(pending, self.config.max_batch),
                                         self._reid_gallery, self._face_gallery)
        with self._lock:  # process() shares the numbering, so it counts as completed work too
            self._completed += count
        return results

    # -- the worker -------------------------------------------------------------------------------

    def _ensure_worker(self) -> None:
        with self._lock:
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, name="edgereid-pipeline", daemon=True)
                self._worker.start()

    def _work(self) -> None:
        """The worker: never dies on data. A frame that fails is a result with an error (the executor); should
        the batch path itself fail, every frame of that batch gets the error and the worker goes on. Only an
        interpreter-level exit stops it, and then blocked producers are woken with PipelineClosedError."""
        try:
            while (batch := self.batcher.get_batch()) is not None:
                try:
                    results = self.executor.run(batch, self._reid_gallery, self._face_gallery)
                except Exception as exc:  # noqa: BLE001 - delivered, typed, with its cause, per frame
                    results = [self.executor.failed_result(item, exc) for item in batch]
                for result in results:
                    self._keep(result)
                with self._lock:
                    self._completed += len(batch)
        except BaseException as exc:  # surfaced to the caller by results()/submit()
            self._error = exc
            self.batcher.close()

    def _keep(self, result: FrameResult) -> None:
        """Queue a finished result; when ``results_size`` results wait unread, the oldest is dropped (counted in
        ``stats["results_dropped"]``) so an app that never reads cannot exhaust memory."""
        while True:
            try:
                self._results.put_nowait(result)
                return
            except queue.Full:
                try:
                    self._results.get_nowait()
                    with self._lock:
                        self._results_dropped += 1
                except queue.Empty:
                    pass

    def _raise_worker_error(self) -> None:
        if self._error is not None:
            raise PipelineClosedError("the pipeline worker stopped", got=f"{type(self._error).__name__}",
                                      fix="open a new Pipeline") from self._error

    # -- lifecycle --------------------------------------------------------------------------------

    @property
    def stats(self) -> dict[str, int]:
        """Frames submitted (queued), completed (by the worker or process()), dropped, and worker batches."""
        s = self.batcher.stats
        return {"submitted": s.submitted, "completed": self._completed, "dropped": s.dropped,
                "batches": s.batches, "results_dropped": self._results_dropped}

    def close(self) -> None:
        """Finish queued work, stop the worker and close every model (releasing ONNX Runtime sessions and
        device memory); results stay readable. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self.batcher.close()
        if self._worker is not None:
            self._worker.join()
        self.executor.close()

    def __enter__(self) -> "Pipeline":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
