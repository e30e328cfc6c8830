"""Batched preprocessing on the GPU: every box of every frame cropped, resized, colour-converted and
normalised by one kernel launch, written straight into a device buffer (an engine's input).

Frames may be host arrays (uploaded once per call, not per box, into reused buffers) or device arrays exposing
``__cuda_array_interface__``/DLPack (zero-copy), BGR ``uint8 [H, W, 3]`` or NV12 ``uint8 [H*3/2, W]``.
The arithmetic is the one of :func:`edgereid.ops.reference.preprocess_reference`
(``kernels/crop_resize.cu``; the tests hold the host build of that source to the reference).
"""

from __future__ import annotations

import ctypes

import numpy as np

from edgereid.card import InputSpec
from edgereid.errors import InputError
from edgereid import engine_file
from edgereid.runtime import cuda, cuda_kernels
from edgereid.ops.geometry import CropPlan


def frame_layout(shape: tuple[int, ...], dtype: np.dtype, fmt: int, where: str) -> tuple[int, int]:
    """``(height, width)`` of a frame of ``fmt``, after checking its dtype and shape."""
    if np.dtype(dtype) != np.uint8:
        raise InputError(f"{where} has the wrong dtype", expected="uint8", got=str(np.dtype(dtype)),
                         fix="frames are 8-bit BGR or NV12; convert on the device before submitting")
    if fmt == cuda_kernels.FORMAT_BGR:
        if len(shape) != 3 or shape[2] != 3:
            raise InputError(f"{where} has the wrong shape", expected="[H, W, 3] BGR", got=str(shape))
        return shape[0], shape[1]
    if len(shape) != 2 or shape[0] % 3 or shape[1] % 2:
        raise InputError(f"{where} is not an NV12 frame", expected="[H*3/2, W] with even H and W", got=str(shape))
    return shape[0] * 2 // 3, shape[1]


class GpuPreprocessor:
    """Compiles the kernels once for this GPU (NVRTC, cached) and fills engine inputs batch by batch.

    :meth:`upload` puts a set of frames on the device once (host frames copied into reused buffers,
    device frames referenced in place); :meth:`run` then writes any number of crop batches from them."""

    def __init__(self, spec: InputSpec, max_batch: int, half: bool = False, arch: str | None = None) -> None:
        capability = arch or f"compute_{(engine_file.compute_capability() or '8.7').replace('.', '')}"
        self.spec, self.max_batch, self.half = spec, max_batch, half
        self.module = cuda.KernelModule(cuda_kernels.compile_ptx(capability, half=half))
        self.norm = cuda_kernels.pack_normalise(spec)
        self._jobs = cuda.DeviceBuffer(max_batch * cuda_kernels.JOB_DTYPE.itemsize)
        self._table: cuda.DeviceBuffer | None = None
        self._frame_buffers: list[cuda.DeviceBuffer] = []

    def upload(self, frames: list, stream: cuda.Stream, formats: list[int] | None = None) -> None:
        """Make ``frames`` (host or device; BGR or NV12 per ``formats``) the source of the next :meth:`run` calls."""
        formats = formats or [cuda_kernels.FORMAT_BGR] * len(frames)
        table = np.zeros(len(frames), cuda_kernels.FRAME_DTYPE)
        host_index = 0
        for i, (frame, fmt) in enumerate(zip(frames, formats)):
            if isinstance(frame, np.ndarray):
                frame = np.ascontiguousarray(frame)
                height, width = frame_layout(frame.shape, frame.dtype, fmt, f"frame {i}")
                buffer = self._frame_buffer(host_index, frame.nbytes)
                buffer.upload(frame, stream)
                host_index += 1
                table[i] = cuda_kernels.frame_entry(buffer.ptr, height, width, frame.strides[0], fmt)
            else:
                view = cuda.device_array(frame)
                height, width = frame_layout(view.shape, view.dtype, fmt, f"frame {i}")
                table[i] = cuda_kernels.frame_entry(view.ptr, height, width, view.pitch, fmt)
        if self._table is None or self._table.nbytes < table.nbytes:
            self._table = cuda.DeviceBuffer(max(table.nbytes, cuda_kernels.FRAME_DTYPE.itemsize))
        self._table.upload(table, stream)
        self._frames = len(frames)

    def _frame_buffer(self, index: int, nbytes: int) -> cuda.DeviceBuffer:
        """The index-th host-frame buffer, grown when a frame is larger (buffers are reused across calls)."""
        if index == len(self._frame_buffers):
            self._frame_buffers.append(cuda.DeviceBuffer(nbytes))
        elif self._frame_buffers[index].nbytes < nbytes:
            stale = self._frame_buffers[index]
            self._frame_buffers[index] = cuda.DeviceBuffer(nbytes)
            stale.free()
        return self._frame_buffers[index]

    def run(self, plan: CropPlan, out_ptr: int, stream: cuda.Stream) -> None:
        """Write ``len(plan)`` crops of the uploaded frames into the device buffer at ``out_ptr`` (NCHW)."""
        if self._table is None:
            raise InputError("no frames uploaded", fix="call upload(frames, stream) first")
        if len(plan) > self.max_batch:
            raise InputError("more crops than the preprocessor's batch", expected=f"<= {self.max_batch}", got=str(len(plan)))
        if len(plan) and int(plan.frame_index.max()) >= self._frames:
            raise InputError("a crop refers to a frame that was not uploaded", expected=f"index < {self._frames}",
                             got=str(int(plan.frame_index.max())))
        self._jobs.upload(cuda_kernels.pack_jobs(plan), stream)
        kernel = "edge_warp_affine" if plan.warps is not None else "edge_crop_resize"
        args = [ctypes.c_void_p(self._table.ptr), ctypes.c_void_p(self._jobs.ptr), ctypes.c_void_p(out_ptr),
                ctypes.c_int(self.spec.height), ctypes.c_int(self.spec.width),
                (ctypes.c_char * self.norm.nbytes).from_buffer_copy(self.norm.tobytes())]
        self.module.launch(kernel, cuda_kernels.grid_for(self.spec, len(plan)), cuda_kernels.BLOCK, args, stream)
