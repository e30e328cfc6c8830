"""The batched GPU preprocessing kernels (``kernels/crop_resize.cu``): argument packing, NVRTC compilation
with a PTX cache, and launches through cuda-python.

The kernel source is the single definition of the GPU arithmetic; it matches
:func:`edgereid.ops.reference.preprocess_reference`, which the tests hold it to by compiling the
same source for the host (``kernels/host_shim.h``). Job tables are NumPy structured arrays laid out like
the C structs, so the same packing feeds the host build, the GPU launch and the TensorRT plugin.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from edgereid.card import InputSpec
from edgereid.errors import BackendError, InputError, MissingDependencyError
from edgereid.runtime.cuda import bindings, check
from edgereid.ops.geometry import CropPlan, invert_affine
from edgereid.ops.preprocess import fill_bgr

KERNEL_DIR = Path(__file__).parent / "kernels"
KERNEL_SOURCE = KERNEL_DIR / "crop_resize.cu"
FORMAT_BGR, FORMAT_NV12 = 0, 1
BLOCK = (16, 16, 1)

FRAME_DTYPE = np.dtype([("data", np.uint64), ("height", np.int32), ("width", np.int32), ("pitch", np.int32),
                        ("format", np.int32)], align=True)
JOB_DTYPE = np.dtype([("frame", np.int32), ("box", np.int32, 4), ("place", np.int32, 4),
                      ("to_frame", np.float32, 6)], align=True)
NORMALISE_DTYPE = np.dtype([("mean", np.float32, 3), ("inv_std", np.float32, 3), ("fill_bgr", np.float32, 3),
                            ("rgb", np.int32)], align=True)


def kernel_source() -> str:
    return KERNEL_SOURCE.read_text()


def pack_jobs(plan: CropPlan) -> np.ndarray:
    """One job per crop of ``plan`` (box, placement, and for warps the output-to-frame affine)."""
    jobs = np.zeros(len(plan), JOB_DTYPE)
    jobs["frame"] = plan.frame_index
    jobs["box"] = plan.boxes
    jobs["place"] = plan.placement
    if plan.warps is not None:
        jobs["to_frame"] = np.stack([invert_affine(w).reshape(6) for w in plan.warps]) if len(plan) else 0
    return jobs


def pack_normalise(spec: InputSpec) -> np.ndarray:
    """The kernel's normalisation block; the kernel writes NCHW 3-channel float/half inputs only."""
    if spec.layout != "NCHW" or spec.channels != 3 or spec.dtype == "uint8":
        raise BackendError("the GPU preprocessing kernel writes NCHW 3-channel float inputs",
                           got=f"{spec.layout}, {spec.channels} channel(s), {spec.dtype}",
                           fix="run this model on the CPU path (ONNX Runtime), or export it NCHW float")
    mean, std = spec.channel_stats()
    norm = np.zeros((), NORMALISE_DTYPE)
    norm["mean"] = mean
    norm["inv_std"] = [1.0 / s for s in std]
    norm["fill_bgr"] = fill_bgr(spec)
    norm["rgb"] = 1 if spec.color_order == "RGB" else 0
    return norm


def frame_entry(pointer: int, height: int, width: int, pitch: int, fmt: int) -> np.void:
    """One frame-table row; ``pointer`` is a host or device address of the pixels."""
    entry = np.zeros((), FRAME_DTYPE)
    entry["data"], entry["height"], entry["width"], entry["pitch"], entry["format"] = pointer, height, width, pitch, fmt
    return entry


def host_frame_table(frames: list[np.ndarray], formats: list[int] | None = None) -> np.ndarray:
    """Frame table over host arrays (BGR ``[H, W, 3]`` or NV12 ``[H*3/2, W]``); keep ``frames`` alive."""
    table = np.zeros(len(frames), FRAME_DTYPE)
    for i, frame in enumerate(frames):
        fmt = (formats or [FORMAT_BGR] * len(frames))[i]
        if not frame.flags.c_contiguous or frame.dtype != np.uint8:
            raise InputError(f"frame {i} must be a C-contiguous uint8 array")
        height = frame.shape[0] if fmt == FORMAT_BGR else frame.shape[0] * 2 // 3
        table[i] = frame_entry(frame.ctypes.data, height, frame.shape[1], frame.strides[0], fmt)
    return table


def grid_for(spec: InputSpec, crops: int) -> tuple[int, int, int]:
    return ((spec.width + BLOCK[0] - 1) // BLOCK[0], (spec.height + BLOCK[1] - 1) // BLOCK[1], crops)


# --- NVRTC ------------------------------------------------------------------------------------------

def compile_ptx(arch: str = "compute_87", half: bool = False, cache_dir: str | Path | None = None) -> str:
    """PTX of the kernels for ``arch`` (e.g. ``compute_87`` for Orin, ``compute_90`` for H100), cached
    on disk by source hash, architecture and output type."""
    source = kernel_source()
    defines = ["-DEDGE_OUT_T=__half", "-DEDGE_TO_OUT(v)=__float2half(v)"] if half else []
    prelude = "#include <cuda_fp16.h>\n" if half else ""
    key = hashlib.sha256((prelude + source + arch + " ".join(defines) + "fmad=false").encode()).hexdigest()[:20]
    cache = Path(cache_dir or os.environ.get("EDGEREID_KERNEL_CACHE", Path.home() / ".cache" / "edgereid" / "kernels"))
    cached = cache / f"crop_resize-{key}.ptx"
    if cached.is_file():
        return cached.read_text()
    nvrtc = bindings("nvrtc")
    try:
        program = check(nvrtc.nvrtcCreateProgram((prelude + source).encode(), b"crop_resize.cu", 0, [], []),
                         "nvrtcCreateProgram")
    except RuntimeError as exc:  # cuda-python raises when libnvrtc cannot be found
        raise MissingDependencyError("nvidia-cuda-nvrtc", "gpu", "compiling the GPU kernels (NVRTC)", got=str(exc),
                                     fix="pip install 'edgereid[gpu]' (or install the CUDA toolkit)") from exc
    # no fused multiply-add: NV12 conversion must round exactly as the reference (fma changes 1 in ~1e6)
    options = [f"--gpu-architecture={arch}".encode(), b"--std=c++14", b"--fmad=false", *[d.encode() for d in defines]]
    include = _cuda_include_dir() if half else None
    if include:
        options.append(f"--include-path={include}".encode())
    result = nvrtc.nvrtcCompileProgram(program, len(options), options)
    if int(result[0]) != 0:
        size = check(nvrtc.nvrtcGetProgramLogSize(program), "nvrtcGetProgramLogSize")
        log = b" " * size
        nvrtc.nvrtcGetProgramLog(program, log)
        raise BackendError("NVRTC could not compile crop_resize.cu", got=log.decode(errors="replace"))
    size = check(nvrtc.nvrtcGetPTXSize(program), "nvrtcGetPTXSize")
    ptx = b" " * size
    check(nvrtc.nvrtcGetPTX(program, ptx), "nvrtcGetPTX")
    text = ptx.decode().rstrip("\x00")
    from edgereid.fileio import atomic_write_text

    atomic_write_text(cached, text)
    return text


def _cuda_include_dir() -> str | None:
    """Where ``cuda_fp16.h`` lives (CUDA_HOME, /usr/local/cuda, or any nvidia-* wheel), if anywhere."""
    import site

    candidates = [Path(os.environ.get("CUDA_HOME", "/nonexistent")) / "include", Path("/usr/local/cuda/include")]
    for root in site.getsitepackages() + [site.getusersitepackages()]:
        candidates += sorted(Path(root).glob("nvidia/*/include"))
    return next((str(c) for c in candidates if (c / "cuda_fp16.h").is_file()), None)
