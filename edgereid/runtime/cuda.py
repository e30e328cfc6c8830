"""A thin CUDA layer over cuda-python (``cuda.bindings``): streams, device and pinned host buffers,
copies, kernel modules from PTX, and zero-copy views of other libraries' device arrays.

What TensorRT's own samples moved to (they dropped pycuda); no torch needed. Every call's error code is
checked and turned into a :class:`~edgereid.errors.BackendError` that names the call.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

import numpy as np

from edgereid.errors import BackendError, InputError, MissingDependencyError, require


def bindings(name: str):
    """A ``cuda.bindings`` module (``runtime``, ``driver``, ``nvrtc``), or a clear error without cuda-python."""
    return require(f"cuda.bindings.{name}", "gpu", "the CUDA layer (GPU memory, streams, kernels)")


def _runtime():
    return bindings("runtime")


def check(result, what: str):
    """Unpack a cuda-python ``(error, *values)`` result, raising on an error code."""
    error, *values = result if isinstance(result, tuple) else (result,)
    if int(error) != 0:
        fix = "check the NVIDIA driver (nvidia-smi) and that the GPU is not out of memory"
        if int(error) in (222, 35):  # unsupported PTX version / driver older than the runtime
            fix = ("the driver is older than this CUDA runtime/NVRTC: install the wheels of the driver's CUDA major "
                   "(on JetPack 6: pip install 'cuda-python<13' nvidia-cuda-nvrtc-cu12)")
        raise BackendError(f"CUDA call {what} failed", got=str(error), fix=fix)
    if not values:
        return None
    return values[0] if len(values) == 1 else tuple(values)


class Stream:
    """A CUDA stream (non-default, so work can be captured into CUDA graphs)."""

    def __init__(self) -> None:
        self._rt = _runtime()
        self.handle = check(self._rt.cudaStreamCreateWithFlags(self._rt.cudaStreamNonBlocking), "cudaStreamCreate")

    def synchronize(self) -> None:
        check(self._rt.cudaStreamSynchronize(self.handle), "cudaStreamSynchronize")

    def close(self) -> None:
        if self.handle is not None:
            check(self._rt.cudaStreamDestroy(self.handle), "cudaStreamDestroy")
            self.handle = None


class DeviceBuffer:
    """``nbytes`` of device memory."""

    def __init__(self, nbytes: int) -> None:
        self._rt = _runtime()
        self.nbytes = int(nbytes)
        self.ptr = int(check(self._rt.cudaMalloc(max(self.nbytes, 1)), "cudaMalloc"))

    def upload(self, host: np.ndarray, stream: Stream) -> None:
        self._copy(self.ptr, host.ctypes.data, host.nbytes, self._rt.cudaMemcpyKind.cudaMemcpyHostToDevice, stream)

    def download(self, host: np.ndarray, stream: Stream) -> None:
        self._copy(host.ctypes.data, self.ptr, host.nbytes, self._rt.cudaMemcpyKind.cudaMemcpyDeviceToHost, stream)

    def _copy(self, dst: int, src: int, nbytes: int, kind, stream: Stream) -> None:
        if nbytes > self.nbytes:
            raise BackendError("copy larger than the device buffer", expected=f"<= {self.nbytes} bytes", got=str(nbytes))
        check(self._rt.cudaMemcpyAsync(dst, src, nbytes, kind, stream.handle), "cudaMemcpyAsync")

    def free(self) -> None:
        if self.ptr:
            check(self._rt.cudaFree(self.ptr), "cudaFree")
            self.ptr = 0


class PinnedArray:
    """A NumPy array in page-locked host memory (fast, asynchronous copies)."""

    def __init__(self, shape: tuple[int, ...], dtype) -> None:
        self._rt = _runtime()
        dtype = np.dtype(dtype)
        nbytes = int(np.prod(shape)) * dtype.itemsize
        self.ptr = int(check(self._rt.cudaMallocHost(max(nbytes, 1)), "cudaMallocHost"))
        raw = (ctypes.c_char * max(nbytes, 1)).from_address(self.ptr)
        self.array = np.frombuffer(raw, dtype=dtype, count=int(np.prod(shape))).reshape(shape)

    def free(self) -> None:
        if self.ptr:
            check(self._rt.cudaFreeHost(self.ptr), "cudaFreeHost")
            self.ptr = 0
            self.array = None
            self.ptr = 0


@dataclass(frozen=True)
class DeviceArray:
    """A view of someone else's device array: pointer, shape, dtype, row pitch (bytes)."""

    ptr: int
    shape: tuple[int, ...]
    dtype: np.dtype
    pitch: int


def device_array(obj) -> DeviceArray:
    """Zero-copy view of a device array exposing ``__cuda_array_interface__`` (CuPy, Numba, torch) or
    DLPack (through CuPy or torch, whichever is installed). The work that fills it must be finished (or
    synchronised with the stream that reads it): the interface's producer stream is not waited on."""
    interface = getattr(obj, "__cuda_array_interface__", None)
    if interface is None and hasattr(obj, "__dlpack__"):
        obj = _from_dlpack(obj)
        interface = obj.__cuda_array_interface__
    if interface is None:
        raise InputError("not a device array", expected="an object with __cuda_array_interface__ or __dlpack__",
                         got=type(obj).__name__, fix="pass a host numpy array, or a CuPy/torch CUDA array")
    shape = tuple(interface["shape"])
    dtype = np.dtype(interface["typestr"])
    strides = interface.get("strides")
    contiguous = np.empty(shape, dtype).strides if shape else ()
    if strides is not None and len(shape) > 1 and tuple(strides[1:]) != contiguous[1:]:
        raise InputError("device array rows must be contiguous", got=f"strides {strides}",
                         fix="make it contiguous (e.g. cupy.ascontiguousarray) before submitting")
    pitch = strides[0] if strides else (contiguous[0] if shape else dtype.itemsize)
    return DeviceArray(int(interface["data"][0]), shape, dtype, int(pitch))


def _from_dlpack(obj):
    try:
        import cupy

        return cupy.from_dlpack(obj)
    except ImportError:
        pass
    try:
        import torch

        return torch.from_dlpack(obj)
    except ImportError as exc:
        raise MissingDependencyError("cupy", "gpu", "reading a DLPack device array",
                                     fix="pip install cupy-cuda12x (or torch)") from exc


class KernelModule:
    """A PTX module loaded with the driver API; ``launch`` runs one of its kernels on a stream."""

    def __init__(self, ptx: str) -> None:
        from cuda.bindings import driver

        self._driver = driver
        check(driver.cuInit(0), "cuInit")
        check(_runtime().cudaFree(0), "cudaFree(0)")  # makes the primary context current for the driver API
        self.module = check(driver.cuModuleLoadData(ptx.encode()), "cuModuleLoadData")
        self._functions: dict[str, object] = {}

    def launch(self, name: str, grid: tuple[int, int, int], block: tuple[int, int, int], args: list, stream: Stream):
        """``args`` are ctypes values (pointers as ``c_void_p``, structs as ``c_char`` arrays)."""
        function = self._functions.get(name)
        if function is None:
            function = self._functions[name] = check(self._driver.cuModuleGetFunction(self.module, name.encode()),
                                                     f"cuModuleGetFunction({name})")
        pointers = (ctypes.c_void_p * len(args))(*[ctypes.addressof(a) for a in args])
        check(self._driver.cuLaunchKernel(function, *grid, *block, 0, stream.handle, ctypes.addressof(pointers), 0),
              f"cuLaunchKernel({name})")

    def close(self) -> None:
        """Unload the module (its kernels can no longer be launched)."""
        if self.module is not None:
            check(self._driver.cuModuleUnload(self.module), "cuModuleUnload")
            self.module = None
            self._functions.clear()
