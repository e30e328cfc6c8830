"""Inference backends behind one protocol, chosen by the artifact given (see :func:`load_backend`)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from edgereid.errors import BackendError
from edgereid.runtime.backends.base import Backend


# what `backend=` accepts: "auto" chooses by the file's suffix
BACKENDS = ("auto", "onnxruntime", "openvino", "tensorrt", "torch")


def load_backend(path: str | Path, *, backend: str = "auto", providers: Sequence[str] | None = None,
                 threads: int | None = None, precision: str | None = None) -> Backend:
    """Open a model file with ``backend``, or (``auto``) the one its format calls for: ``.onnx`` ONNX Runtime,
    ``.engine`` TensorRT (GPU), ``.safetensors`` PyTorch (``providers`` may name the device, e.g. ``("cuda",)``).
    ``openvino`` runs an ``.onnx`` file with OpenVINO on the CPU at ``precision`` (f32 or bf16)."""
    suffix = Path(path).suffix.lower()
    if backend not in BACKENDS:
        raise BackendError("unknown backend", expected=" | ".join(BACKENDS), got=repr(backend)[:40])
    if backend == "openvino":
        if suffix != ".onnx":
            raise BackendError("the OpenVINO backend runs ONNX files", expected="an .onnx model with an edgereid card",
                               got=str(path), fix="export the model with `edgereid export`")
        from edgereid.runtime.backends.openvino import OpenVinoBackend

        return OpenVinoBackend(path, precision=precision, threads=threads)
    wanted = {"onnxruntime": ".onnx", "tensorrt": ".engine", "torch": ".safetensors"}.get(backend)
    if wanted and suffix != wanted:
        raise BackendError(f"the {backend} backend runs {wanted} files", got=str(path),
                           fix="build an engine with export/build_engine.py for tensorrt; pass the checkpoint for torch")
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


__all__ = ["BACKENDS", "Backend", "load_backend"]
