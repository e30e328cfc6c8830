"""ONNX Runtime backend: the default, CPU-only by default, explicit about providers.

A provider that was asked for and is not applied is an error, never a silent fallback to the CPU
(:func:`edgereid.ort_session.open_session`).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

from edgereid.card import INT8_TARGET_METADATA_KEY, ModelCard, card_from_metadata
from edgereid.card_tools import check_card_against_graph
from edgereid.errors import InputError
from edgereid.ort_session import CPU_PROVIDERS, open_session
from edgereid.runtime.backends.base import Backend

DEFAULT_PROVIDERS = CPU_PROVIDERS
_ORT_TYPES = {"tensor(float)": np.dtype(np.float32), "tensor(float16)": np.dtype(np.float16),
              "tensor(uint8)": np.dtype(np.uint8), "tensor(int8)": np.dtype(np.int8)}


class OnnxRuntimeBackend(Backend):
    """An ``onnxruntime.InferenceSession`` bound to the model card embedded in the file."""

    name = "onnxruntime"

    def __init__(self, path: str | Path, providers: Sequence[str] = DEFAULT_PROVIDERS,
                 threads: int | None = None) -> None:
        self.path = Path(path)
        self.session = open_session(self.path, providers=providers, threads=threads, spinning=False)
        self.providers = tuple(self.session.get_providers())
        metadata = self.session.get_modelmeta().custom_metadata_map
        self.card: ModelCard = card_from_metadata(metadata, str(self.path))
        if metadata.get(INT8_TARGET_METADATA_KEY) == "tensorrt" and self.providers[0] == "CPUExecutionProvider":
            warnings.warn(f"{self.path} is INT8 in TensorRT's Q/DQ form, which ONNX Runtime's CPU provider runs as "
                          "dequantized float (0.22-0.26x FP32 measured, BENCHMARKS.md); for a CPU, write it with "
                          "`edgereid convert --precision int8 --target cpu`", RuntimeWarning, stacklevel=2)
        check_card_against_graph(self.card, self.session.get_inputs(), self.session.get_outputs(), str(self.path))
        graph_input = self.session.get_inputs()[0]
        self._input_name = graph_input.name
        self._input_dtype = _ORT_TYPES.get(graph_input.type)
        self._output_names = [o.name for o in self.card.outputs]
        batch_dim = graph_input.shape[0]
        self.fixed_batch = isinstance(batch_dim, int)
        self.max_batch = batch_dim if self.fixed_batch else None

    def _infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        if not isinstance(batch, np.ndarray):
            raise InputError("ONNX Runtime on the CPU takes host batches", expected="np.ndarray",
                             got=type(batch).__name__, fix="copy device arrays to the host first")
        if self._input_dtype is not None and batch.dtype != self._input_dtype:
            raise InputError(f"batch has the wrong dtype for model '{self.card.name}'",
                             expected=str(np.dtype(self._input_dtype)), got=str(batch.dtype))
        outputs = self.session.run(self._output_names, {self._input_name: batch})
        return dict(zip(self._output_names, outputs))

    def _release(self) -> None:
        # The session owns the model's weights and its thread pool; dropping the last reference frees them.
        self.session = None
