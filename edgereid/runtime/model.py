"""A deployed model: backend + card-driven preprocessing + postprocessing, batch by batch."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgereid.card import ModelCard
from edgereid.ops.geometry import CropPlan, plan_crops, points_to_frame
from edgereid.ops.keypoint_decode import decode_keypoints
from edgereid.ops.postprocess import l2_normalize
from edgereid.ops.readout import apply_readout
from edgereid.runtime.backends.base import Backend, DeviceInput
from edgereid.runtime.host_preprocess import HostPreprocessor

# the smallest half-batch worth splitting a model batch for overlap (below it, per-call overhead dominates)
MIN_HALF_BATCH = 8


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
    Preprocessing (:class:`~edgereid.runtime.host_preprocess.HostPreprocessor`) spreads a chunk's crops over
    ``preprocess_threads`` workers (default: the CPUs, at most 4) and prepares the next chunk while the
    backend runs the current one (:meth:`_chunks`). The model owns its backend: :meth:`close` (or a ``with`` block) closes it.
    """

    on_device = False  # True where preprocessing runs on the GPU from a batch's DeviceFrames

    def __init__(self, backend: Backend, max_batch: int = 32, preprocess_threads: int | None = None) -> None:
        self.backend = backend
        self.card: ModelCard = backend.card
        self.max_batch = backend.max_batch or max_batch
        self.preprocessor = HostPreprocessor(self.card.input, self.max_batch, preprocess_threads)

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
        chunks = self._chunks(plan)
        pending = self.preprocessor.start(frames, chunks[0], slot=0)
        for chunk in range(len(chunks)):
            batch = pending.result()
            count = len(batch)
            if chunk + 1 < len(chunks):  # the next chunk is prepared in the other slot while this one runs
                pending = self.preprocessor.start(frames, chunks[chunk + 1], slot=chunk + 1)
            if self.backend.fixed_batch and count < self.max_batch:
                batch = self.preprocessor.buffer(chunk % 2)  # fixed-batch models: run padded, keep the real rows
            outputs = self.backend.infer(batch)
            raw.append({k: v[:count] for k, v in outputs.items()})
        merged = {name: np.concatenate([r[name] for r in raw]) for name in raw[0]}
        return self._postprocess(merged, plan)

    def _chunks(self, plan: CropPlan) -> list[CropPlan]:
        """The plan in model batches of at most ``max_batch``; with a dynamic batch each is run as two halves, so
        that the second half is prepared while the first runs (measured for the 256x128 ReID student on ONNX
        Runtime, CI machine: 527 crops/s as two batches of 16 against 515 as one of 32, interleaved in one run;
        a CPU's throughput does not need the larger batch, and the preprocessing no longer waits in front)."""
        step = self.max_batch
        if not self.backend.fixed_batch and self.preprocessor.threads > 1 and len(plan) >= 2 * MIN_HALF_BATCH:
            step = min(step, max(MIN_HALF_BATCH, -(-min(len(plan), self.max_batch) // 2)))
        return [plan.slice(start, start + step) for start in range(0, len(plan), step)]

    def close(self) -> None:
        """Close the backend (releasing its session or device memory), stop the preprocessing workers and drop
        the batch buffers."""
        self.backend.close()
        self.preprocessor.close()

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


def crop_model_for(backend: Backend, max_batch: int = 32) -> CropModel:
    """The batch path for ``backend``: where the backend declares a device input
    (:class:`~edgereid.runtime.backends.base.DeviceInput`, e.g. TensorRT engines) the GPU kernel writes the
    crops straight into it (:class:`edgereid.runtime.gpu_model.GpuCropModel`); otherwise the CPU (OpenCV)
    path fills a reused host batch."""
    if isinstance(backend, DeviceInput):
        from edgereid.runtime.gpu_model import GpuCropModel

        return GpuCropModel(backend)
    return CropModel(backend, max_batch)
