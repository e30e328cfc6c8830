"""ONNX Runtime backend: the default, CPU-only by default, explicit about providers.

A provider that was asked for and is not applied is an error, never a silent fallback to the CPU.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from edgereid.card import ModelCard, card_from_metadata
from edgereid.errors import BackendError, InputError, ModelCardError

DEFAULT_PROVIDERS = ("CPUExecutionProvider",)


class OnnxRuntimeBackend:
    """An ``onnxruntime.InferenceSession`` bound to the model card embedded in the file."""

    name = "onnxruntime"

    def __init__(self, path: str | Path, providers: Sequence[str] = DEFAULT_PROVIDERS,
                 threads: int | None = None) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_file():
            raise BackendError(f"model file not found: {self.path}", fix="check the path")
        available = ort.get_available_providers()
        missing = [p for p in providers if p not in available]
        if missing:
            raise BackendError(f"ONNX Runtime providers {missing} are not available in this install",
                               expected=f"one of {available}", got=str(list(providers)),
                               fix="install onnxruntime-gpu for CUDAExecutionProvider, or use the CPU")
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if threads:
            options.intra_op_num_threads = threads
        # A pipeline holds several sessions on few cores; spinning idle threads would starve the others.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=list(providers))
        except Exception as exc:  # onnxruntime raises its own exception types
            raise BackendError(f"ONNX Runtime cannot load {self.path}", got=str(exc).splitlines()[0]) from exc
        applied = self.session.get_providers()
        not_applied = [p for p in providers if p not in applied]
        if not_applied:
            raise BackendError(f"providers {not_applied} were asked for but not applied",
                               got=f"session runs on {applied}",
                               fix="check the GPU driver / CUDA libraries, or ask for CPUExecutionProvider")
        self.providers = tuple(applied)
        self.card: ModelCard = card_from_metadata(self.session.get_modelmeta().custom_metadata_map,
                                                  str(self.path))
        self._input = self.session.get_inputs()[0]
        self._output_names = [o.name for o in self.session.get_outputs()]
        declared = [o.name for o in self.card.outputs]
        if sorted(declared) != sorted(self._output_names):
            raise ModelCardError(f"card outputs do not match the graph of {self.path}",
                                 expected=str(declared), got=str(self._output_names),
                                 fix="re-attach a card that names the graph's outputs")
        batch_dim = self._input.shape[0]
        self.max_batch = batch_dim if isinstance(batch_dim, int) else None

    def infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        spec = self.card.input
        expected = (3, spec.height, spec.width)
        if batch.ndim != 4 or batch.shape[1:] != expected:
            raise InputError("batch has the wrong shape for this model",
                             expected=f"[N, {', '.join(map(str, expected))}]", got=str(batch.shape))
        if self.max_batch is not None and batch.shape[0] != self.max_batch:
            raise InputError(f"this model was exported with a fixed batch of {self.max_batch}",
                             got=str(batch.shape[0]), fix="re-export with a dynamic batch axis")
        outputs = self.session.run(self._output_names, {self._input.name: batch})
        return dict(zip(self._output_names, outputs))
