"""A deployed model whose crops never leave the GPU: the batched preprocessing kernel writes straight
into the TensorRT engine's input buffer, the engine runs, only the outputs come back.

Written for GPU machines and not run on the CI machine (no GPU there); `scripts/gpu_check.py` times it.
"""

from __future__ import annotations

import numpy as np

from edgereid.runtime.backends.tensorrt import TensorRtBackend
from edgereid.runtime.gpu_preprocess import GpuPreprocessor
from edgereid.runtime.model import CropModel, CropOutputs, _slice_plan
from edgereid.ops.geometry import CropPlan


class GpuCropModel(CropModel):
    """:class:`CropModel` with GPU preprocessing into the engine input (FP16 input when the engine wants it)."""

    def __init__(self, backend: TensorRtBackend) -> None:
        super().__init__(backend, backend.max_batch)
        half = backend.precision == "fp16" and np.dtype(backend._inputs[0][2]) == np.float16
        self.preprocessor = GpuPreprocessor(self.card.input, backend.max_batch, half=half)

    def run(self, frames: list, plan: CropPlan) -> CropOutputs:
        """Frames (host or device arrays) and a plan in, frame-space results out."""
        if len(plan) == 0:
            return self._empty()
        raw = []
        self.preprocessor.upload(frames, self.backend.stream)
        smallest = self.backend.profile.min
        for start in range(0, len(plan), self.max_batch):
            part = _slice_plan(plan, start, start + self.max_batch)
            self.preprocessor.run(part, self.backend.input_pointer, self.backend.stream)
            self.backend.execute(max(len(part), smallest))  # pad up to the profile; extra rows are dropped
            raw.append({k: v[:len(part)] for k, v in self.backend.download(max(len(part), smallest)).items()})
        merged = {name: np.concatenate([r[name] for r in raw]) for name in raw[0]}
        return self._postprocess(merged, plan)
