"""The one place ONNX Runtime sessions are made: the runtime's backend, the card tools, the exporters'
parity checks, the precision gate and the text-query encoder all open models through :func:`open_session`.

It sits on the core floor so that every side may use it; it imports onnxruntime only when called. A
provider that was asked for and is not applied is an error, never a silent fallback to the CPU.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from edgereid.errors import BackendError

CPU_PROVIDERS = ("CPUExecutionProvider",)


def open_session(model: str | Path | bytes, *, providers: Sequence[str] = CPU_PROVIDERS, threads: int | None = None,
                 optimize: bool = True, spinning: bool = True, error: type[Exception] = BackendError,
                 where: str | None = None) -> Any:
    """An ``onnxruntime.InferenceSession`` on a file path or serialised model bytes.

    ``threads`` bounds intra-op threads; ``optimize=False`` disables graph rewriting (what the FP16 gate
    needs to keep every Cast); ``spinning=False`` stops idle threads from spinning (a pipeline holds
    several sessions on few cores). A file that cannot be opened raises ``error`` naming ``where``.
    """
    import onnxruntime as ort

    where = where or (str(model) if not isinstance(model, bytes) else "the ONNX model")
    if not isinstance(model, bytes) and not Path(model).is_file():
        raise error(f"model file not found: {model}", fix="check the path")
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
    if not optimize:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    source = model if isinstance(model, bytes) else str(model)
    try:
        session = ort.InferenceSession(source, options, providers=list(providers))
    except Exception as exc:  # onnxruntime raises its own exception types
        raise error(f"ONNX Runtime cannot load {where}", expected="a valid ONNX model", got=str(exc).splitlines()[0][:300],
                    fix="check that the file is a complete .onnx export (re-export or re-download it)") from exc
    not_applied = [p for p in providers if p not in session.get_providers()]
    if not_applied:
        raise BackendError(f"providers {not_applied} were asked for but not applied",
                           got=f"session runs on {session.get_providers()}",
                           fix="check the GPU driver / CUDA libraries, or ask for CPUExecutionProvider")
    return session
