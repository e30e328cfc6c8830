"""OpenVINO backend: the fast path on x86 CPUs (extra ``openvino``).

On the CI machine's Xeon (AVX-512 VNNI, AMX) OpenVINO runs the 256x128 ReID student 1.1x ONNX Runtime at FP32,
about 2x with the BF16 precision hint (AMX) and about 2x on the INT8 graph ``edgereid convert --precision int8
--target cpu`` writes (BENCHMARKS.md, "CPU backends"). It reads the same ONNX files with their cards as the ONNX
Runtime backend; the card and the graph's inputs and outputs are checked the same way.

Compiled models are cached in :func:`openvino_cache_dir` (``~/.cache/edgereid/openvino``), never beside a
model the user gave: the second process to open a model skips the compilation. :attr:`OpenVinoBackend.isa`
records what the CPU offered and which precision ran, for benchmarks to report.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from edgereid.card import BF16_GATE_METADATA_KEY, ModelCard, card_from_metadata
from edgereid.card_tools import check_card_against_graph
from edgereid.errors import BackendError, InputError, require
from edgereid.ort_session import open_session
from edgereid.runtime.backends.base import Backend

# inference precision hints this backend accepts (OpenVINO's names); None picks the model's gated hint
PRECISIONS = ("f32", "bf16")


def openvino_cache_dir() -> Path:
    """Where compiled OpenVINO models are cached: ``$EDGEREID_CACHE_DIR/openvino``, else
    ``$XDG_CACHE_HOME/edgereid/openvino``, else ``~/.cache/edgereid/openvino``."""
    root = os.environ.get("EDGEREID_CACHE_DIR")
    if root:
        return Path(root) / "openvino"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "edgereid" / "openvino"


def native_bf16() -> bool:
    """Whether OpenVINO is installed and reports native BF16 on this CPU (AMX or AVX-512 BF16)."""
    try:
        import openvino as ov
    except ImportError:
        return False
    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


class OpenVinoBackend(Backend):
    """An OpenVINO compiled model on the CPU, bound to the card embedded in the ONNX file.

    ``precision``: ``f32`` or ``bf16`` (OpenVINO's inference precision hint; INT8 graphs keep their Q/DQ
    precision and run their remaining float layers at it); None uses ``bf16`` when the model passed
    ``edgereid convert --precision bf16``'s gate and the CPU has native BF16, else ``f32``. ``threads`` bounds
    inference threads; ``streams`` sets OpenVINO's parallel streams (None: its latency default, one stream
    using every thread for a batch); ``cache_dir`` overrides :func:`openvino_cache_dir`.
    """

    name = "openvino"

    def __init__(self, path: str | Path, *, precision: str | None = None, threads: int | None = None,
                 streams: int | None = None, cache_dir: str | Path | None = None) -> None:
        if precision is not None and precision not in PRECISIONS:
            raise BackendError("unknown OpenVINO precision", expected=" or ".join(PRECISIONS), got=repr(precision)[:40],
                               fix="use f32, or bf16 on a CPU with AVX-512 BF16 / AMX")
        ov = require("openvino", "openvino", "the OpenVINO backend")
        self.path = Path(path)
        # ONNX Runtime (a core dependency) reads the card and the graph's inputs and outputs, unoptimised.
        session = open_session(self.path, optimize=False)
        metadata = session.get_modelmeta().custom_metadata_map
        self.card: ModelCard = card_from_metadata(metadata, str(self.path))
        check_card_against_graph(self.card, session.get_inputs(), session.get_outputs(), str(self.path))
        batch_dim = session.get_inputs()[0].shape[0]
        del session
        self.fixed_batch = isinstance(batch_dim, int)
        self.max_batch = batch_dim if self.fixed_batch else None

        core = ov.Core()
        capabilities = [str(c) for c in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")]
        hint = precision or ("bf16" if metadata.get(BF16_GATE_METADATA_KEY) == "passed" and "BF16" in capabilities
                             else "f32")
        if hint == "bf16" and "BF16" not in capabilities:
            raise BackendError("this CPU has no native BF16 for OpenVINO", expected="BF16 in the CPU's capabilities "
                               "(AVX-512 BF16 or AMX)", got=str(capabilities), fix="use precision f32 here")
        config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": hint, "CACHE_DIR": str(cache_dir or openvino_cache_dir())}
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        if streams:
            config["NUM_STREAMS"] = int(streams)
        try:
            self._compiled = core.compile_model(str(self.path), "CPU", config)
        except Exception as exc:  # OpenVINO raises RuntimeError with its own text
            raise BackendError(f"OpenVINO cannot compile {self.path}", expected="an ONNX model OpenVINO supports",
                               got=str(exc).splitlines()[0][:300],
                               fix="run it with the ONNX Runtime backend, or re-export it") from exc
        self._request = self._compiled.create_infer_request()
        self._input_dtype = np.dtype(self.card.input.dtype)
        self._output_names = [o.name for o in self.card.outputs]
        self._ports = {name: self._compiled.output(name) for name in self._output_names}
        self.isa = {"device": str(core.get_property("CPU", "FULL_DEVICE_NAME")), "capabilities": capabilities,
                    "precision": hint, "threads": int(self._compiled.get_property("INFERENCE_NUM_THREADS")),
                    "streams": int(self._compiled.get_property("NUM_STREAMS")), "openvino": ov.__version__}
        self.providers = (f"OpenVINO CPU ({hint})",)

    def _infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        if not isinstance(batch, np.ndarray):
            raise InputError("OpenVINO on the CPU takes host batches", expected="np.ndarray",
                             got=type(batch).__name__, fix="copy device arrays to the host first")
        if batch.dtype != self._input_dtype:
            raise InputError(f"batch has the wrong dtype for model '{self.card.name}'",
                             expected=str(self._input_dtype), got=str(batch.dtype))
        # The request reads the caller's batch in place (it is not changed during a synchronous call) and
        # returns copies of its outputs, which it would otherwise overwrite on the next call.
        results = self._request.infer({0: np.ascontiguousarray(batch)}, share_inputs=True, share_outputs=False)
        return {name: results[port] for name, port in self._ports.items()}

    def _release(self) -> None:
        # The compiled model owns the weights and the thread pool; the request holds it.
        self._request = None
        self._compiled = None
