"""Inference backends behind one protocol, chosen by the artifact given (see :func:`load_backend`)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from edgereid.errors import BackendError
from edgereid.runtime.backends.base import Backend


def load_backend(path: str | Path, *, providers: Sequence[str] | None = None,
                 threads: int | None = None) -> Backend:
    """Open a model file with the backend its format calls for: ``.onnx`` ONNX Runtime, ``.engine``
    TensorRT (GPU), ``.safetensors`` PyTorch (``providers`` may name the device, e.g. ``("cuda",)``)."""
    suffix = Path(path).suffix.lower()
    if suffix == ".onnx":
        from edgereid.runtime.backends.onnxruntime import DEFAULT_PROVIDERS, OnnxRuntimeBackend

        return OnnxRuntimeBackend(path, providers or DEFAULT_PROVIDERS, threads)
    if suffix == ".engine":
        from edgereid.runtime.backends.tensorrt import TensorRtBackend

        return TensorRtBackend(path)
    if suffix == ".safetensors":
        from edgereid.runtime.backends.torch import TorchBackend

        device = (providers or ("cpu",))[0]
        return TorchBackend(path, device="cpu" if device == "CPUExecutionProvider" else device)
    raise BackendError(f"no backend for '{suffix}' files",
                       expected="an .onnx model with an edgereid card, an .engine with its sidecar, or a "
                                ".safetensors checkpoint", got=str(path),
                       fix="export the model with `edgereid export`")


__all__ = ["Backend", "load_backend"]
