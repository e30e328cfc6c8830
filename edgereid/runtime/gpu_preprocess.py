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


class DeviceFrames:
    """One batch's frames on the GPU: uploaded once (host frames copied into reused buffers, device frames
    referenced in place) and read by the preprocessing of every model of the batch."""

    def __init__(self) -> None:
        self._table: cuda.DeviceBuffer | None = None
        self._frame_buffers: list[cuda.DeviceBuffer] = []
        self.count = 0

    def upload(self, frames: list, stream: cuda.Stream, formats: list[int] | None = None) -> None:
        """Make ``frames`` (host or device; BGR or NV12 per ``formats``) the current frame set. The copies
        are complete when this returns, so kernels on any stream may read them."""
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
            if self._table is not None:
                self._table.free()
            self._table = cuda.DeviceBuffer(max(table.nbytes, cuda_kernels.FRAME_DTYPE.itemsize))
        self._table.upload(table, stream)
        stream.synchronize()  # host staging may be reused and other streams read the frames next
        self.count = len(frames)

    def _frame_buffer(self, index: int, nbytes: int) -> cuda.DeviceBuffer:
        """The index-th host-frame buffer, grown when a frame is larger (buffers are reused across calls)."""
        if index == len(self._frame_buffers):
            self._frame_buffers.append(cuda.DeviceBuffer(nbytes))
        elif self._frame_buffers[index].nbytes < nbytes:
            stale = self._frame_buffers[index]
            self._frame_buffers[index] = cuda.DeviceBuffer(nbytes)
            stale.free()
        return self._frame_buffers[index]

    @property
    def table_pointer(self) -> int:
        if self._table is None:
            raise InputError("no frames uploaded", fix="call upload(frames, stream) first")
        return self._table.ptr

    def close(self) -> None:
        """Free the frame buffers and the frame table."""
        for buffer in self._frame_buffers:
            buffer.free()
        self._frame_buffers.clear()
        if self._table is not None:
            self._table.free()
            self._table = None
        self.count = 0


class GpuPreprocessor:
    """Compiles the kernels once for this GPU (NVRTC, cached) and fills engine inputs batch by batch.

    :meth:`run` writes crop batches from a :class:`DeviceFrames` (the pipeline uploads a batch's frames
    once for all its models) or from the frames given to :meth:`upload`. :meth:`close` frees the job
    buffer, its own frames and the kernel module."""

    def __init__(self, spec: InputSpec, max_batch: int, half: bool = False, arch: str | None = None) -> None:
        capability = arch or f"compute_{(engine_file.compute_capability() or '8.7').replace('.', '')}"
        self.spec, self.max_batch, self.half = spec, max_batch, half
        self.module = cuda.KernelModule(cuda_kernels.compile_ptx(capability, half=half))
        self.norm = cuda_kernels.pack_normalise(spec)
        self._jobs = cuda.DeviceBuffer(max_batch * cuda_kernels.JOB_DTYPE.itemsize)
        self.frames = DeviceFrames()

    def upload(self, frames: list, stream: cuda.Stream, formats: list[int] | None = None) -> None:
        """Make ``frames`` the source of the next :meth:`run` calls that are given no frame set."""
        self.frames.upload(frames, stream, formats)

    def run(self, plan: CropPlan, out_ptr: int, stream: cuda.Stream, frames: DeviceFrames | None = None) -> None:
        """Write ``len(plan)`` crops of ``frames`` (default: the uploaded ones) into the device buffer at
        ``out_ptr`` (NCHW)."""
        frames = frames or self.frames
        table = frames.table_pointer
        if len(plan) > self.max_batch:
            raise InputError("more crops than the preprocessor's batch", expected=f"<= {self.max_batch}", got=str(len(plan)))
        if len(plan) and int(plan.frame_index.max()) >= frames.count:
            raise InputError("a crop refers to a frame that was not uploaded", expected=f"index < {frames.count}",
                             got=str(int(plan.frame_index.max())))
        self._jobs.upload(cuda_kernels.pack_jobs(plan), stream)
        kernel = "edge_warp_affine" if plan.warps is not None else "edge_crop_resize"
        args = [ctypes.c_void_p(table), ctypes.c_void_p(self._jobs.ptr), ctypes.c_void_p(out_ptr),
                ctypes.c_int(self.spec.height), ctypes.c_int(self.spec.width),
                (ctypes.c_char * self.norm.nbytes).from_buffer_copy(self.norm.tobytes())]
        self.module.launch(kernel, cuda_kernels.grid_for(self.spec, len(plan)), cuda_kernels.BLOCK, args, stream)

    def close(self) -> None:
        """Free the job buffer, the frames uploaded through :meth:`upload` and the kernel module."""
        self._jobs.free()
        self.frames.close()
        self.module.close()
