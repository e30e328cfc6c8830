"""TensorRT backend (10.x / 11.x, or TensorRT-RTX): an engine built by ``export/build_engine.py``.

Written for the GPU path and not run on the CI machine (no GPU, no TensorRT there; see BENCHMARKS.md
for what has run where). Before anything is deserialised, the sidecar is checked: an engine that is
truncated, altered, or built for another TensorRT or GPU is refused with the command that rebuilds
it. Named I/O tensors, ``set_input_shape`` checked against the engine's profile, ``set_tensor_address``,
``execute_async_v3`` on one stream per execution context, pinned host buffers, and a CUDA graph per
batch bucket once a shape has been seen (static shapes replay without Python-side launch overhead).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgereid import engine_file
from edgereid.card import ModelCard
from edgereid.engine_file import BatchProfile, check_engine, import_tensorrt, plugin_libraries, sidecar_flavour
from edgereid.errors import BackendError, InputError
from edgereid.runtime import cuda
from edgereid.runtime.backends.base import Backend


class TensorRtBackend(Backend):
    """One engine, one execution context, one stream; device I/O buffers sized for the profile's max batch.

    Implements :class:`~edgereid.runtime.backends.base.DeviceInput` (``input_pointer``, ``stream``,
    ``execute``, ``download``), so GPU preprocessing writes crops straight into the engine's input.
    :meth:`close` frees the device and pinned buffers, the CUDA graphs, the stream and the engine.
    """

    name = "tensorrt"

    def __init__(self, engine_path: str | Path, use_cuda_graphs: bool = True) -> None:
        self.path = Path(engine_path)
        if not self.path.is_file():
            raise BackendError(f"engine not found: {self.path}", fix="check the path, or build it with export/build_engine.py")
        trt, flavour = import_tensorrt(sidecar_flavour(self.path))
        ok, why = engine_file.gpu_available()
        if not ok:
            raise BackendError("the TensorRT backend needs a CUDA GPU", got=why,
                               fix="run on the GPU machine, or use the .onnx model with ONNX Runtime on the CPU")
        sidecar = check_engine(self.path, trt.__version__, flavour, engine_file.compute_capability())
        self.card = ModelCard.from_dict(sidecar["card"])
        self.profile = BatchProfile.parse(sidecar["key"]["profile"])
        self.max_batch = self.profile.max
        self.min_batch = self.profile.min
        self.precision = sidecar["key"]["precision"]
        self.providers = (f"{flavour} {trt.__version__}",)
        registry = trt.get_plugin_registry()
        for library in plugin_libraries(self.path, sidecar):
            registry.load_library(str(library))
        self._logger = trt.Logger(trt.Logger.WARNING)
        self.runtime = trt.Runtime(self._logger)
        self.engine = self.runtime.deserialize_cuda_engine(self.path.read_bytes())
        if self.engine is None:
            raise BackendError(f"TensorRT could not deserialise {self.path}",
                               fix=f"rebuild with: {sidecar['rebuild']}")
        self.context = self.engine.create_execution_context()
        self.stream = cuda.Stream()
        self._trt = trt
        self._inputs, self._outputs = self._io_tensors()
        self.input_dtype = np.dtype(self._inputs[0][2])
        self._device: dict[str, cuda.DeviceBuffer] = {}
        self._host: dict[str, cuda.PinnedArray] = {}
        for name, shape, dtype in self._inputs + self._outputs:
            full = (self.max_batch, *shape[1:])
            self._device[name] = cuda.DeviceBuffer(int(np.prod(full)) * np.dtype(dtype).itemsize)
            self._host[name] = cuda.PinnedArray(full, dtype)
            self.context.set_tensor_address(name, self._device[name].ptr)
        self._graphs: dict[int, object] = {}
        self._use_graphs = use_cuda_graphs

    def _io_tensors(self):
        trt = self._trt
        inputs, outputs = [], []
        for i in range(self.engine.num_io_tensors):
            name = self.engine.get_tensor_name(i)
            entry = (name, tuple(self.engine.get_tensor_shape(name)), trt.nptype(self.engine.get_tensor_dtype(name)))
            (inputs if self.engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT else outputs).append(entry)
        if len(inputs) != 1:
            raise BackendError("edgereid engines take one image batch", got=f"{len(inputs)} inputs")
        return inputs, outputs

    @property
    def input_pointer(self) -> int:
        """Device address of the input buffer (the GPU preprocessor writes here)."""
        return self._device[self._inputs[0][0]].ptr

    def _check_batch_size(self, n: int) -> None:
        self.profile.check(n)

    def _infer(self, batch: Any) -> dict[str, np.ndarray]:
        """Batch in (host NumPy, or a device array read in place: ``__cuda_array_interface__``/DLPack),
        host outputs by name out."""
        if not isinstance(batch, np.ndarray):
            return self._infer_device(batch)
        name, _, dtype = self._inputs[0]
        n = len(batch)
        staging = self._host[name].array[:n]
        staging[...] = batch.astype(dtype, copy=False)
        self._device[name].upload(staging, self.stream)
        self.execute(n)
        return self.download(n)

    def _infer_device(self, batch) -> dict[str, np.ndarray]:
        """Zero-copy: the engine reads the caller's device buffer (no CUDA graph: its address is not ours)."""
        name, shape, dtype = self._inputs[0]
        view = cuda.device_array(batch)
        if view.dtype != np.dtype(dtype):
            raise InputError("device batch does not match the engine input",
                             expected=f"{np.dtype(dtype)} [N, {', '.join(map(str, shape[1:]))}]",
                             got=f"{view.dtype} {list(view.shape)}")
        self.context.set_tensor_address(name, view.ptr)
        try:
            if not self.context.set_input_shape(name, tuple(view.shape)) or \
                    not self.context.execute_async_v3(self.stream.handle):
                raise BackendError("TensorRT could not run on the device batch", got=f"shape {view.shape}")
            return self.download(view.shape[0])
        finally:
            self.context.set_tensor_address(name, self._device[name].ptr)

    def execute(self, n: int) -> None:
        """Run on whatever the input buffer holds for ``n`` crops (replaying a CUDA graph when possible)."""
        self._require_open()
        self.profile.check(n)
        name, shape, _ = self._inputs[0]
        if not self.context.set_input_shape(name, (n, *shape[1:])):
            raise InputError(f"TensorRT refused input shape {(n, *shape[1:])}", expected=f"batch in {self.profile.text()}")
        graph = self._graphs.get(n)
        if graph is not None:
            cuda.check(cuda._runtime().cudaGraphLaunch(graph, self.stream.handle), "cudaGraphLaunch")
            return
        if not self.context.execute_async_v3(self.stream.handle):
            raise BackendError("TensorRT execute_async_v3 failed", got="see the TensorRT log above")
        if self._use_graphs:
            graph = self._capture(n)
            if graph is None:  # something in the engine cannot be captured (e.g. a plugin's host copy)
                self._use_graphs = False
            else:
                self._graphs[n] = graph

    def _capture(self, n: int):
        """A CUDA graph of one execution at batch ``n`` (after the warm-up run above), or None when the
        engine cannot be captured."""
        runtime = cuda._runtime()
        self.stream.synchronize()
        cuda.check(runtime.cudaStreamBeginCapture(self.stream.handle,
                                                  runtime.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal),
                   "cudaStreamBeginCapture")
        launched = self.context.execute_async_v3(self.stream.handle)
        error, graph = runtime.cudaStreamEndCapture(self.stream.handle)
        if not launched or int(error) != 0:
            return None
        return cuda.check(runtime.cudaGraphInstantiate(graph, 0), "cudaGraphInstantiate")

    def download(self, n: int) -> dict[str, np.ndarray]:
        out = {}
        for name, _, _ in self._outputs:
            host = self._host[name].array[:n]
            self._device[name].download(host, self.stream)
            out[name] = host
        self.stream.synchronize()
        return {name: np.array(value, dtype=np.float32) for name, value in out.items()}

    def _release(self) -> None:
        """Graphs, device and pinned buffers, the stream, then the context, engine and runtime (in that order:
        TensorRT objects must go before the memory they point at is reused)."""
        runtime = cuda._runtime()
        if self.stream.handle is not None:
            self.stream.synchronize()
        for graph in self._graphs.values():
            cuda.check(runtime.cudaGraphExecDestroy(graph), "cudaGraphExecDestroy")
        self._graphs.clear()
        self.context = None
        self.engine = None
        self.runtime = None
        for buffer in self._device.values():
            buffer.free()
        for pinned in self._host.values():
            pinned.free()
        self._device.clear()
        self._host.clear()
        self.stream.close()
