"""A deployed model whose crops never leave the GPU: the batched preprocessing kernel writes straight
into the TensorRT engine's input buffer, the engine runs, only the outputs come back.

Written for GPU machines and not run on the CI machine (no GPU there); `scripts/gpu_check.py` times it.
"""

from __future__ import annotations

import numpy as np

from edgereid.ops.geometry import CropPlan
from edgereid.runtime.backends.base import Backend
from edgereid.runtime.gpu_preprocess import DeviceFrames, GpuPreprocessor
from edgereid.runtime.model import CropModel, CropOutputs


class GpuCropModel(CropModel):
    """:class:`CropModel` with GPU preprocessing into the input buffer of a backend that declares one
    (:class:`~edgereid.runtime.backends.base.DeviceInput`); FP16 input when the backend wants it."""

    on_device = True

    def __init__(self, backend: Backend) -> None:
        super().__init__(backend, backend.max_batch, preprocess_threads=1)  # host buffers unused here
        half = np.dtype(backend.input_dtype) == np.float16
        self.preprocessor = GpuPreprocessor(self.card.input, backend.max_batch, half=half)

    def run(self, frames: list, plan: CropPlan, device_frames: DeviceFrames | None = None) -> CropOutputs:
        """Frames (host or device arrays) and a plan in, frame-space results out. With ``device_frames``
        (the batch's frames already on the GPU, shared by every model of the batch) nothing is uploaded."""
        if len(plan) == 0:
            return self._empty()
        raw = []
        if device_frames is None:
            self.preprocessor.upload(frames, self.backend.stream)
        smallest = self.backend.min_batch
        for start in range(0, len(plan), self.max_batch):
            part = plan.slice(start, start + self.max_batch)
            self.preprocessor.run(part, self.backend.input_pointer, self.backend.stream, device_frames)
            self.backend.execute(max(len(part), smallest))  # pad up to the profile; extra rows are dropped
            raw.append({k: v[:len(part)] for k, v in self.backend.download(max(len(part), smallest)).items()})
        merged = {name: np.concatenate([r[name] for r in raw]) for name in raw[0]}
        return self._postprocess(merged, plan)

    def close(self) -> None:
        """Free the preprocessing's device memory and kernels, then close the backend."""
        self.preprocessor.close()
        super().close()
