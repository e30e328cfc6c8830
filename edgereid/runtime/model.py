"""A deployed model: backend + card-driven preprocessing + postprocessing, batch by batch."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgereid.card import ModelCard
from edgereid.ops.geometry import CropPlan, plan_crops, points_to_frame
from edgereid.ops.keypoint_decode import decode_keypoints
from edgereid.ops.postprocess import l2_normalize
from edgereid.ops.preprocess import allocate_batch, allocate_staging, preprocess_batch
from edgereid.ops.readout import apply_readout
from edgereid.runtime.backends.base import Backend, DeviceInput


@dataclass(frozen=True)
class CropOutputs:
    """Per-crop results: ``embeddings`` for ReID/face models; keypoint fields for keypoint models.

    ``invalid`` flags crops whose model output was not finite (NaN or inf): their embedding is zero, their
    points NaN with confidence 0, and they are never matched against a gallery."""

    embeddings: np.ndarray | None = None
    keypoints: np.ndarray | None = None
    keypoint_confidence: np.ndarray | None = None
    joints: np.ndarray | None = None
    invalid: np.ndarray | None = None


class CropModel:
    """Crops boxes from frames, runs the backend in chunks of ``max_batch``, returns frame-space results.

    The input buffers are allocated once and reused, so steady-state inference allocates only outputs.
    The model owns its backend: :meth:`close` (or leaving a ``with`` block) closes it.
    """

    on_device = False  # True where preprocessing runs on the GPU from a batch's DeviceFrames

    def __init__(self, backend: Backend, max_batch: int = 32) -> None:
        self.backend = backend
        self.card: ModelCard = backend.card
        self.max_batch = backend.max_batch or max_batch
        self._buffer = allocate_batch(self.card.input, self.max_batch)
        self._staging = allocate_staging(self.card.input, self.max_batch)

    @property
    def task(self) -> str:
        return self.card.task

    def plan(self, frame_index: np.ndarray, boxes: np.ndarray, landmarks: np.ndarray | None = None) -> CropPlan:
        return plan_crops(frame_index, boxes, self.card.input, landmarks)

    def run(self, frames: list[np.ndarray], plan: CropPlan, device_frames: object = None) -> CropOutputs:
        """Results for every crop of ``plan`` (frames validated, boxes clipped by the caller).
        ``device_frames`` (the batch's frames already on the GPU) is used by GPU models only."""
        if len(plan) == 0:
            return self._empty()
        raw: list[dict[str, np.ndarray]] = []
        for start in range(0, len(plan), self.max_batch):
            part = _slice_plan(plan, start, start + self.max_batch)
            batch = preprocess_batch(frames, part, self.card.input, self._buffer, self._staging)
            if self.backend.fixed_batch and len(part) < self.max_batch:
                batch = self._buffer  # fixed-batch models: run padded, keep the real rows
            outputs = self.backend.infer(batch)
            raw.append({k: v[:len(part)] for k, v in outputs.items()})
        merged = {name: np.concatenate([r[name] for r in raw]) for name in raw[0]}
        return self._postprocess(merged, plan)

    def close(self) -> None:
        """Close the backend (releasing its session or device memory) and drop the batch buffers."""
        self.backend.close()
        self._buffer = self._staging = None

    def __enter__(self) -> "CropModel":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _postprocess(self, outputs: dict[str, np.ndarray], plan: CropPlan) -> CropOutputs:
        card = self.card
        if card.task in ("reid", "face"):
            raw = np.asarray(outputs[card.output("embedding").name], dtype=np.float32)
            invalid = ~np.isfinite(raw.reshape(len(raw), -1)).all(axis=1)
            embeddings = l2_normalize(np.where(invalid[:, None], 0.0, raw).astype(np.float32))
            return CropOutputs(embeddings=embeddings, invalid=invalid)
        coords, confidence = decode_keypoints(card, outputs)
        invalid = ~(np.isfinite(coords).reshape(len(coords), -1).all(axis=1)
                    & np.isfinite(confidence).reshape(len(confidence), -1).all(axis=1))
        coords[invalid] = np.nan
        confidence[invalid] = 0.0
        joints = None
        if card.readout is not None:
            in_crop = apply_readout(coords, card.readout, (card.input.height, card.input.width))
            joints = points_to_frame(in_crop.astype(np.float64), plan.to_frame)
        return CropOutputs(keypoints=points_to_frame(coords, plan.to_frame), keypoint_confidence=confidence,
                           joints=joints, invalid=invalid)

    def _empty(self) -> CropOutputs:
        card = self.card
        none = np.zeros(0, bool)
        if card.task in ("reid", "face"):
            return CropOutputs(embeddings=np.zeros((0, card.embedding_dim), dtype=np.float32), invalid=none)
        k = card.keypoint_count()
        joints = np.zeros((0, len(card.readout.joint_names), 2), np.float32) if card.readout else None
        return CropOutputs(keypoints=np.zeros((0, k, 2), np.float32),
                           keypoint_confidence=np.zeros((0, k), np.float32), joints=joints, invalid=none)


def _slice_plan(plan: CropPlan, start: int, stop: int) -> CropPlan:
    warps = None if plan.warps is None else plan.warps[start:stop]
    return CropPlan(plan.frame_index[start:stop], plan.boxes[start:stop], plan.placement[start:stop],
                    plan.to_frame[start:stop], warps)


def crop_model_for(backend: Backend, max_batch: int = 32) -> CropModel:
    """The batch path for ``backend``: where the backend declares a device input
    (:class:`~edgereid.runtime.backends.base.DeviceInput`, e.g. TensorRT engines) the GPU kernel writes the
    crops straight into it (:class:`edgereid.runtime.gpu_model.GpuCropModel`); otherwise the CPU (OpenCV)
    path fills a reused host batch."""
    if isinstance(backend, DeviceInput):
        from edgereid.runtime.gpu_model import GpuCropModel

        return GpuCropModel(backend)
    return CropModel(backend, max_batch)
