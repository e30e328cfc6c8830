"""Latency and throughput of a model file: raw model, end to end, and the per-crop loop others use.

For each batch size: the raw backend on a ready batch; with ``e2e``, frames + boxes in and
embeddings (or keypoints) out through the runtime's batch path (box validation, preprocessing into the
reused batch buffer spread over the cores, inference, postprocessing; for TensorRT engines the
preprocessing is the GPU kernel writing into the engine input), timed in turn with the raw model so
their ratio does not carry the machine's drift; and, in the same run, the per-crop
loop that BoxMOT, torchreid and insightface use (crop and resize one box at a time, batch-1
inference each). All three are measured in one process so their ratios are comparable.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from edgereid.card import InputSpec
from edgereid.runtime.backends import Backend
from edgereid.runtime.model import crop_model_for
from edgereid.ops.geometry import validate_boxes


@dataclass(frozen=True)
class BenchRow:
    """One batch size: latency percentiles of a call and crops per second (end to end when measured)."""

    batch: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    crops_per_s: float
    raw_crops_per_s: float | None = None
    per_crop_loop_crops_per_s: float | None = None

    def to_dict(self) -> dict[str, float | int | None]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def time_calls(fn: Callable[[], object], warmup: int, iterations: int, min_seconds: float) -> np.ndarray:
    """Milliseconds per call, after ``warmup`` calls; runs at least ``iterations`` and ``min_seconds``."""
    for _ in range(warmup):
        fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < iterations or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000.0)
    return np.array(times)


def time_interleaved(fns: list[Callable[[], object]], warmup: int, iterations: int,
                     min_seconds: float) -> list[np.ndarray]:
    """Milliseconds per call of each of ``fns``, called in turn in one loop, so that every one of them sees the
    same machine (this CI machine's speed drifts by 20 % within seconds; measured back to back, a ratio of
    two paths would carry that drift)."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    times: list[list[float]] = [[] for _ in fns]
    start = time.perf_counter()
    while len(times[0]) < iterations or time.perf_counter() - start < min_seconds:
        for fn, series in zip(fns, times):
            t0 = time.perf_counter()
            fn()
            series.append((time.perf_counter() - t0) * 1000.0)
    return [np.array(series) for series in times]


def bench_scene(batch: int, seed: int = 0, frame_hw: tuple[int, int] = (720, 1280),
                frames: int = 4) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Camera-sized frames and ``batch`` person-shaped boxes spread over them."""
    rng = np.random.default_rng(seed)
    height, width = frame_hw
    images = [cv2.resize(rng.integers(0, 256, (height // 16, width // 16, 3), dtype=np.uint8), (width, height),
                         interpolation=cv2.INTER_LINEAR) for _ in range(frames)]
    box_h = rng.uniform(80, 400, batch)
    box_w = box_h * rng.uniform(0.3, 0.5, batch)
    x1 = rng.uniform(0, width - box_w)
    y1 = rng.uniform(0, height - box_h)
    boxes = np.stack([x1, y1, x1 + box_w, y1 + box_h], axis=1)
    return images, rng.integers(0, frames, batch), boxes


def loop_tensor(crop: np.ndarray, spec: InputSpec) -> np.ndarray:
    """A resized BGR crop as one model input ``[3, H, W]`` (``[H, W, 3]`` for NHWC cards), normalised the way
    per-crop code (BoxMOT, torchreid, insightface) does it: colour conversion, then ``(pixel - mean) / std`` in
    float; raw pixels for uint8 cards."""
    if spec.color_order == "RGB":
        crop = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB)
    if spec.dtype != "uint8":
        mean, std = (np.array(v, dtype=np.float32) for v in spec.channel_stats())
        crop = ((crop.astype(np.float32) - mean) / std).astype(spec.dtype)
    return np.ascontiguousarray(crop if spec.layout == "NHWC" else crop.transpose(2, 0, 1))


def ready_batch(spec: InputSpec, batch: int) -> np.ndarray:
    """A random batch in the card's shape and dtype: what the raw model timing feeds."""
    rng = np.random.default_rng(batch)
    shape = spec.batch_shape(batch)
    if spec.dtype == "uint8":
        return rng.integers(0, 256, shape, dtype=np.uint8)
    return rng.standard_normal(shape).astype(spec.dtype)


def loop_box_tensor(frame: np.ndarray, box: np.ndarray, spec: InputSpec) -> np.ndarray:
    """One box cropped from ``frame`` and resized to the model input with OpenCV, as :func:`loop_tensor`."""
    x1, y1, x2, y2 = np.rint(box).astype(int)
    return loop_tensor(cv2.resize(frame[y1:y2, x1:x2], (spec.width, spec.height)), spec)


def per_crop_loop(backend: Backend, frames: list[np.ndarray], frame_index: np.ndarray, boxes: np.ndarray) -> None:
    """What common ReID/face code does: one crop, one resize, one batch-1 inference per box."""
    spec = backend.card.input
    for index, box in zip(frame_index, boxes):
        backend.infer(loop_box_tensor(frames[index], box, spec)[None])


def run_bench(backend: Backend, batches: list[int], *, e2e: bool = False, warmup: int = 3,
              iterations: int = 10, min_seconds: float = 1.0,
              progress: Callable[[str], None] = lambda _: None) -> list[BenchRow]:
    """One :class:`BenchRow` per batch size; see the module docstring for what is timed."""
    spec = backend.card.input
    rows = []
    for batch in batches:
        ready = ready_batch(spec, batch)
        if not e2e:
            progress(f"batch {batch}: raw model")
            raw = time_calls(lambda: backend.infer(ready), warmup, iterations, min_seconds)
            rows.append(BenchRow(batch, *_percentiles(raw), round(batch / (raw.mean() / 1000.0), 1)))
            continue
        frames, frame_index, boxes = bench_scene(batch)
        model = crop_model_for(backend, max_batch=max(batch, 1))

        def end_to_end() -> None:
            valid = [validate_boxes(boxes[frame_index == i], f.shape) for i, f in enumerate(frames)]
            order = np.concatenate([np.full(len(v), i) for i, v in enumerate(valid)])
            model.run(frames, model.plan(order, np.concatenate(valid)))

        progress(f"batch {batch}: end to end and raw model, in turn")
        full, raw = time_interleaved([end_to_end, lambda: backend.infer(ready)], warmup, iterations, min_seconds)
        raw_rate = batch / (raw.mean() / 1000.0)
        progress(f"batch {batch}: per-crop loop")
        loop = time_calls(lambda: per_crop_loop(backend, frames, frame_index, boxes), 1,
                          max(3, iterations // 3), min_seconds)
        rows.append(BenchRow(batch, *_percentiles(full), round(batch / (full.mean() / 1000.0), 1),
                             round(raw_rate, 1), round(batch / (loop.mean() / 1000.0), 1)))
    return rows


def _percentiles(ms: np.ndarray) -> tuple[float, float, float]:
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return round(float(p50), 3), round(float(p95), 3), round(float(p99), 3)


def format_table(rows: list[BenchRow]) -> str:
    """A Markdown table of the rows (the columns present in them)."""
    keys = list(rows[0].to_dict())
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(row.to_dict().get(k, "")) for k in keys) + " |" for row in rows]
    return "\n".join(lines)


def plot(rows: list[BenchRow], path: str | Path, title: str) -> Path:
    """Crops/s against batch size for each measured path (needs matplotlib)."""
    from edgereid.plots import line_plot

    batches = [r.batch for r in rows]
    if rows[0].raw_crops_per_s is None:
        series = {"raw model": (batches, [r.crops_per_s for r in rows])}
    else:
        series = {"end to end": (batches, [r.crops_per_s for r in rows]),
                  "raw model": (batches, [r.raw_crops_per_s for r in rows]),
                  "per-crop loop": (batches, [r.per_crop_loop_crops_per_s for r in rows])}
    return line_plot(series, path, title, "batch (crops)", "crops / s", log2_x=True)


# the instruction-set extensions that decide which CPU path is fast (INT8 dot products, BF16, AMX tiles)
CPU_ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8", "amx_tile")


def cpu_isa(cpuinfo: str | Path = "/proc/cpuinfo") -> list[str]:
    """Which of :data:`CPU_ISA_FLAGS` the CPU reports (Linux ``/proc/cpuinfo``, first 64 KiB; empty elsewhere)."""
    try:
        with open(cpuinfo, encoding="ascii", errors="replace") as handle:
            text = handle.read(1 << 16)
    except OSError:
        return []
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return [flag for flag in CPU_ISA_FLAGS if flag in flags]


def environment() -> dict[str, object]:
    """Where a benchmark ran: CPU, GPU (name, clocks, driver via nvidia-smi when present), versions."""
    import os
    import platform
    import shutil
    import subprocess
    from importlib import metadata

    from edgereid.engine_file import gpu_available

    info: dict[str, object] = {"platform": platform.platform(), "python": platform.python_version(),
                               "cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count()}
    versions = {}
    for package in ("edgereid", "onnxruntime", "onnxruntime-gpu", "openvino", "torch", "tensorrt", "tensorrt-rtx-cu12",
                    "cuda-python", "opencv-python-headless", "numpy"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    info["versions"] = versions
    info["cpu_isa"] = cpu_isa()
    ok, gpu = gpu_available()
    info["gpu"] = gpu if ok else None
    if ok and shutil.which("nvidia-smi"):
        query = "name,driver_version,clocks.sm,clocks.max.sm,clocks.mem,power.limit"
        result = subprocess.run(["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader"],
                                capture_output=True, text=True, timeout=10)
        info["nvidia_smi"] = dict(zip(query.split(","), [v.strip() for v in result.stdout.split(",")]))
    return info
