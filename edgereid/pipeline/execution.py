"""One batch through every configured model: frames and boxes of many cameras in, one
:class:`~edgereid.types.FrameResult` per frame out.

Stages pass typed objects: the batch's submissions are flattened into one :class:`BatchInputs` (every
person and face box with the index of its frame), each task produces batch-wide
:class:`~edgereid.types.Persons` / :class:`~edgereid.types.Faces`, and each frame takes its rows with a
mask. Where models preprocess on the GPU, the batch's frames are uploaded once and shared by all of them.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from edgereid.errors import BackendClosedError, FrameError, InputError
from edgereid.gallery import Gallery
from edgereid.pipeline.batcher import WorkItem
from edgereid.pipeline.config import PipelineConfig
from edgereid.pipeline.tracks import TrackMemory, visible_share
from edgereid.runtime.model import CropModel
from edgereid.types import Faces, FrameResult, Persons


@dataclass
class Submission:
    """One validated frame as ``submit`` queued it: boxes clipped to whole pixels, landmarks checked."""

    frame: np.ndarray
    boxes: np.ndarray  # [P, 4] int, clipped: the crops
    faces: np.ndarray  # [F, 4] int, clipped
    face_landmarks: np.ndarray | None  # [F, 5, 2] or None
    camera_id: str
    timestamp: float
    submitted_boxes: np.ndarray  # [P, 4] float32 xyxy, as the caller gave them (what results report)
    submitted_faces: np.ndarray  # [F, 4] float32
    tag: Any = None  # anything the caller attached; returned with the result
    track_ids: np.ndarray | None = None  # [P] int64 from the caller's tracker, -1: untracked
    face_track_ids: np.ndarray | None = None  # [F] int64

    @property
    def crops(self) -> int:
        return len(self.boxes) + len(self.faces)


def as_track_ids(values: Any, count: int, name: str) -> np.ndarray | None:
    """Track ids as ``[count]`` int64 (-1 and any negative id: untracked), or None when none were given.
    Whole numbers only (BoxMOT hands them over as floats); anything else is an :class:`InputError`."""
    if values is None:
        return None
    try:
        ids = np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise InputError(f"{name} are not numbers", expected=f"{count} integer track ids (-1: untracked)",
                         got=type(values).__name__) from None
    if len(ids) != count:
        raise InputError(f"{name} do not match the boxes", expected=f"one id per box: {count}", got=str(len(ids)),
                         fix="pass the tracker's id of every box, in the boxes' order")
    if not np.isfinite(ids).all() or (ids != np.round(ids)).any():
        raise InputError(f"{name} must be whole numbers", expected="integer track ids (-1: untracked)",
                         got=_bounded(str(ids[:8].tolist())))
    if (np.abs(ids) >= 2 ** 53).any():  # beyond float64's whole numbers: two ids could become one
        raise InputError(f"{name} are too large", expected="ids below 2**53", got=_bounded(str(ids[:8].tolist())),
                         fix="renumber the tracks, e.g. modulo 2**31")
    return np.maximum(ids, -1).astype(np.int64)


@dataclass(frozen=True)
class BatchInputs:
    """A batch's frames with every person and face box flattened across them, each with its frame index."""

    submissions: list[Submission]
    person_frame: np.ndarray  # [P] index into submissions
    person_boxes: np.ndarray  # [P, 4]
    face_frame: np.ndarray  # [F]
    face_boxes: np.ndarray  # [F, 4]
    face_landmarks: np.ndarray  # [F, 5, 2], zeros where the frame gave none
    face_aligned: np.ndarray  # [F] bool: the face came with landmarks

    def track_rows(self, kind: str) -> tuple[list[Any], np.ndarray, np.ndarray, np.ndarray]:
        """For ``persons`` or ``faces``: each row's track key ``(camera_id, id)`` (None: untracked), box area,
        share inside the frame (:func:`~edgereid.pipeline.tracks.visible_share`) and frame timestamp."""
        keys: list[Any] = []
        submitted = []
        for sub in self.submissions:
            ids = sub.track_ids if kind == "persons" else sub.face_track_ids
            rows = len(sub.boxes) if kind == "persons" else len(sub.faces)
            keys += [None if ids is None or ids[i] < 0 else (sub.camera_id, int(ids[i])) for i in range(rows)]
            submitted.append(sub.submitted_boxes if kind == "persons" else sub.submitted_faces)
        clipped = (self.person_boxes if kind == "persons" else self.face_boxes).astype(np.float64).reshape(-1, 4)
        frame = self.person_frame if kind == "persons" else self.face_frame
        times = np.array([s.timestamp for s in self.submissions], np.float64)[frame] if len(frame) else np.zeros(0)
        areas = (clipped[:, 2] - clipped[:, 0]) * (clipped[:, 3] - clipped[:, 1])
        whole = np.concatenate(submitted).reshape(-1, 4) if submitted else np.zeros((0, 4))
        return keys, areas, visible_share(whole, clipped), times

    @property
    def frames(self) -> list[np.ndarray]:
        return [s.frame for s in self.submissions]

    @classmethod
    def gather(cls, submissions: list[Submission]) -> "BatchInputs":
        def frame_index(counts: list[int]) -> np.ndarray:
            return np.repeat(np.arange(len(counts)), counts).astype(np.int64)

        landmarks = [s.face_landmarks if s.face_landmarks is not None else np.zeros((len(s.faces), 5, 2))
                     for s in submissions]
        return cls(submissions,
                   frame_index([len(s.boxes) for s in submissions]),
                   np.concatenate([s.boxes.reshape(-1, 4) for s in submissions]) if submissions else np.zeros((0, 4)),
                   frame_index([len(s.faces) for s in submissions]),
                   np.concatenate([s.faces.reshape(-1, 4) for s in submissions]) if submissions else np.zeros((0, 4)),
                   np.concatenate(landmarks).reshape(-1, 5, 2) if landmarks else np.zeros((0, 5, 2)),
                   np.concatenate([np.full(len(s.faces), s.face_landmarks is not None) for s in submissions]
                                  ).astype(bool) if submissions else np.zeros(0, bool))


def match_valid(gallery: Gallery | None, embeddings: np.ndarray,
                valid: np.ndarray) -> tuple[tuple[str | None, ...], np.ndarray]:
    """Gallery identities and scores of the ``valid`` rows of ``embeddings``; None and NaN for the other rows,
    and for every row without a (non-empty) gallery."""
    identities: list[str | None] = [None] * len(embeddings)
    scores = np.full(len(embeddings), np.nan, dtype=np.float32)
    if gallery is not None and len(gallery) and valid.any():
        rows = np.flatnonzero(valid)
        for row, found in zip(rows, gallery.match(embeddings[rows])):
            identities[row], scores[row] = found.identity, found.score
    return tuple(identities), scores


def _as_submitted(rows: Any, submitted: np.ndarray) -> Any:
    """A frame's Persons/Faces reporting the boxes as submitted, the crops' clipped boxes beside them."""
    return dataclasses.replace(rows, boxes=submitted, crop_boxes=rows.boxes)


def _bounded(text: str, limit: int = 300) -> str:
    """An error text cut to ``limit`` characters (messages never render unbounded values)."""
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


class BatchExecutor:
    """Runs batches through the models; one batch at a time (the models' batch buffers are reused)."""

    def __init__(self, models: dict[str, CropModel], config: PipelineConfig) -> None:
        self.models = models
        self.config = config
        self._lock = threading.Lock()
        self._device_frames: Any = None
        self._upload_stream: Any = None
        policy = config.track_reuse
        self._memories = {}
        for kind, role in (("persons", "reid_model"), ("faces", "face_model")):
            if policy is not None and role in models:
                spec = models[role].card.input
                self._memories[kind] = TrackMemory(policy, saturation_area=spec.height * spec.width)
        if any(model.on_device for model in models.values()):
            from edgereid.runtime import cuda
            from edgereid.runtime.gpu_preprocess import DeviceFrames

            self._device_frames, self._upload_stream = DeviceFrames(), cuda.Stream()

    def run(self, work: list[WorkItem], reid_gallery: Gallery | None, face_gallery: Gallery | None) -> list[FrameResult]:
        """One result per work item, in order. A frame whose processing fails gets a result carrying a
        :class:`~edgereid.errors.FrameError` (the batch is retried frame by frame to find it); every other
        frame is processed normally. Only a closed backend (the pipeline is shutting down) propagates."""
        with self._lock:
            try:
                return self._run_together(work, reid_gallery, face_gallery)
            except BackendClosedError:
                raise
            except Exception as exc:  # noqa: BLE001 - which frame failed is found below, one at a time
                if len(work) == 1:
                    return [self.failed_result(work[0], exc)]
            results = []
            for item in work:
                try:
                    results += self._run_together([item], reid_gallery, face_gallery)
                except BackendClosedError:
                    raise
                except Exception as exc:  # noqa: BLE001 - the frame fails alone, typed, with its cause
                    results.append(self.failed_result(item, exc))
            return results

    def _run_together(self, work: list[WorkItem], reid_gallery: Gallery | None,
                      face_gallery: Gallery | None) -> list[FrameResult]:
        inputs = BatchInputs.gather([w.payload for w in work])
        device_frames = None
        if self._device_frames is not None:
            self._device_frames.upload(inputs.frames, self._upload_stream)
            device_frames = self._device_frames
        persons = self._persons(inputs, reid_gallery, device_frames)
        faces = self._faces(inputs, face_gallery, device_frames)
        done = time.monotonic()
        return [FrameResult(sequence=item.sequence, camera_id=sub.camera_id, timestamp=sub.timestamp,
                            persons=_as_submitted(persons[inputs.person_frame == i], sub.submitted_boxes),
                            faces=_as_submitted(faces[inputs.face_frame == i], sub.submitted_faces),
                            modality=self.config.modality(sub.camera_id),
                            latency_ms=(done - item.submitted_at) * 1000.0, tag=sub.tag)
                for i, (item, sub) in enumerate(zip(work, inputs.submissions))]

    def failed_result(self, item: WorkItem, exc: BaseException | None) -> FrameResult:
        """The result of a frame that could not be processed: its boxes, no embeddings, the typed error."""
        sub: Submission = item.payload
        error = FrameError(f"frame {item.sequence} of camera '{sub.camera_id}' could not be processed",
                           got=f"{type(exc).__name__}: {_bounded(str(exc))}",
                           fix="check this frame's boxes, faces and landmarks; other frames are unaffected")
        error.__cause__ = exc
        return FrameResult(sequence=item.sequence, camera_id=sub.camera_id, timestamp=sub.timestamp,
                           persons=Persons(sub.submitted_boxes, crop_boxes=sub.boxes.astype(np.float32)),
                           faces=Faces(sub.submitted_faces, crop_boxes=sub.faces.astype(np.float32)),
                           modality=self.config.modality(sub.camera_id),
                           latency_ms=(time.monotonic() - item.submitted_at) * 1000.0, error=error, tag=sub.tag)

    def _persons(self, inputs: BatchInputs, gallery: Gallery | None, device_frames: Any) -> Persons:
        index, boxes, frames = inputs.person_frame, inputs.person_boxes, inputs.frames
        fields: dict[str, Any] = {"boxes": boxes.astype(np.float32)}
        invalid = np.zeros(len(boxes), bool)
        reid = self.models.get("reid_model")
        if reid is not None:
            ir_model = self.models.get("reid_ir_model")
            ir_frames = np.array([ir_model is not None and self.config.modality(s.camera_id) == "ir"
                                  for s in inputs.submissions], dtype=bool)
            is_ir = ir_frames[index] if len(index) else np.zeros(0, bool)

            def embed(todo: np.ndarray, embeddings: np.ndarray, failed: np.ndarray) -> None:
                for model, rows in ((reid, todo & ~is_ir), (ir_model, todo & is_ir)):
                    if model is not None and rows.any():
                        found = model.run(frames, model.plan(index[rows], boxes[rows]), device_frames)
                        embeddings[rows], failed[rows] = found.embeddings, found.invalid

            tracked = self._embed_tracked("persons", inputs, np.ones(len(boxes), bool), embed, gallery,
                                          reid.card.embedding_dim)
            invalid |= tracked.pop("invalid")
            fields.update(tracked)
        keypoints = self.models.get("keypoint_model")
        if keypoints is not None:
            found = keypoints.run(frames, keypoints.plan(index, boxes), device_frames)
            fields["keypoints"], fields["keypoint_confidence"] = found.keypoints, found.keypoint_confidence
            invalid |= found.invalid
            if found.joints is not None:
                fields["joints"] = found.joints
                fields["joint_names"] = tuple(keypoints.card.readout.joint_names)
        return Persons(**fields, invalid=invalid)

    def _faces(self, inputs: BatchInputs, gallery: Gallery | None, device_frames: Any) -> Faces:
        """Face embeddings and matches; faces below ``min_face_size`` are skipped (zero embedding, no
        identity, NaN score, flagged ``too_small``) rather than matched on a few pixels."""
        boxes = inputs.face_boxes
        model = self.models.get("face_model")
        if model is None:
            return Faces(boxes.astype(np.float32))
        sides = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
        usable = sides >= self.config.min_face_size

        def embed(todo: np.ndarray, embeddings: np.ndarray, failed: np.ndarray) -> None:
            for aligned in (True, False):
                rows = todo & (inputs.face_aligned == aligned)
                if rows.any():
                    plan = model.plan(inputs.face_frame[rows], boxes[rows],
                                      inputs.face_landmarks[rows] if aligned else None)
                    found = model.run(inputs.frames, plan, device_frames)
                    embeddings[rows], failed[rows] = found.embeddings, found.invalid

        tracked = self._embed_tracked("faces", inputs, usable, embed, gallery, model.card.embedding_dim)
        return Faces(boxes.astype(np.float32), too_small=~usable, **tracked)

    def _embed_tracked(self, kind: str, inputs: BatchInputs, usable: np.ndarray,
                       embed: Callable[[np.ndarray, np.ndarray, np.ndarray], None], gallery: Gallery | None,
                       dim: int) -> dict[str, Any]:
        """Embeddings, identities and scores of the ``usable`` rows of ``kind``; ``embed(rows, embeddings,
        invalid)`` runs the model on the rows it is given. Rows of tracks that have not changed reuse their
        track's embedding instead (:mod:`edgereid.pipeline.tracks`), and tracked rows report their track's
        identity, decided on its aggregated embedding."""
        given, areas, share, times = inputs.track_rows(kind)
        keys = [key if ok else None for key, ok in zip(given, usable)]  # faces too small to embed are not tracked
        memory = self._memories.get(kind) if any(key is not None for key in keys) else None
        embeddings = np.zeros((len(keys), dim), np.float32)
        invalid = np.zeros(len(keys), bool)
        plan = memory.plan(keys, areas, share, times) if memory is not None else None
        embed(usable & plan.embed if plan is not None else usable, embeddings, invalid)
        tracked = np.array([key is not None and plan is not None for key in keys], bool)
        identities, scores = match_valid(gallery, embeddings, usable & ~invalid & ~tracked)
        fields: dict[str, Any] = {"embeddings": embeddings, "invalid": invalid}
        if plan is not None:
            memory.fill(plan, embeddings, invalid, areas, times)
            known, aggregates = memory.aggregates(keys)
            if known and gallery is not None and len(gallery):
                memory.decide(known, *match_valid(gallery, aggregates, np.ones(len(known), bool)))
            names = list(identities)
            for row in np.flatnonzero(tracked):
                decided = memory.identity(keys[row])
                if decided is not None and not invalid[row]:
                    names[row], scores[row] = decided
            identities = tuple(names)
            fields["reused"] = tracked & ~plan.embed
        fields["identities"], fields["scores"] = identities, scores
        if any(key is not None for key in given):
            fields["track_ids"] = np.array([-1 if key is None else key[1] for key in given], np.int64)
        return fields

    def forget_tracks(self, camera_id: str | None = None) -> None:
        """Drop the remembered tracks (all, or one camera's), e.g. when a camera's tracker restarts its ids."""
        with self._lock:
            for memory in self._memories.values():
                memory.forget(camera_id)

    def close(self) -> None:
        """Close every model (sessions, device memory) and the shared device frames."""
        with self._lock:
            for model in self.models.values():
                model.close()
            if self._device_frames is not None:
                self._device_frames.close()
                self._upload_stream.close()
                self._device_frames = None
