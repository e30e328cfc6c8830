#!/usr/bin/env python3
"""Everything GPU-side in one run (GPU time comes in short stretches): correctness of the kernels
against the NumPy reference, the crop kernel's bandwidth against a device-to-device copy, the end-to-end
GPU path (GPU preprocessing + torch inference, or TensorRT when installed) against the CPU path
(OpenCV + ONNX Runtime on 2 threads) for 8 cameras x 16 boxes, and TensorRT engines against ONNX Runtime
where TensorRT imports. Writes JSON and prints a Markdown summary for BENCHMARKS.md.

    python scripts/gpu_check.py [--out gpu_check.json] [--seconds 3]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from edgereid.card import InputSpec, read_card
from edgereid.eval.bench import bench_scene, environment
from edgereid.engine_file import gpu_available
from edgereid.runtime import cuda
from edgereid.runtime.gpu_preprocess import GpuPreprocessor
from edgereid.ops.geometry import plan_crops, validate_boxes
from edgereid.ops.reference import nv12_to_bgr_reference, preprocess_reference

ROOT = Path(__file__).resolve().parents[1]
MODELS = {"reid": ROOT / "samples/models/reid", "face": ROOT / "samples/models/face",
          "keypoints": ROOT / "samples/models/keypoints"}


class Events:
    """CUDA-event timing of work on a stream."""

    def __init__(self, stream: cuda.Stream) -> None:
        self.rt, self.stream = cuda._runtime(), stream
        self.start = cuda.check(self.rt.cudaEventCreate(), "cudaEventCreate")
        self.stop = cuda.check(self.rt.cudaEventCreate(), "cudaEventCreate")

    def time_ms(self, fn, repeats: int) -> float:
        fn()
        self.stream.synchronize()
        cuda.check(self.rt.cudaEventRecord(self.start, self.stream.handle), "cudaEventRecord")
        for _ in range(repeats):
            fn()
        cuda.check(self.rt.cudaEventRecord(self.stop, self.stream.handle), "cudaEventRecord")
        cuda.check(self.rt.cudaEventSynchronize(self.stop), "cudaEventSynchronize")
        return float(cuda.check(self.rt.cudaEventElapsedTime(self.start, self.stop), "cudaEventElapsedTime")) / repeats


def gpu_preprocess(frames, plan, spec, stream, half=False, formats=None) -> np.ndarray:
    out = cuda.DeviceBuffer(len(plan) * 3 * spec.height * spec.width * (2 if half else 4))
    pre = GpuPreprocessor(spec, max(len(plan), 1), half=half)
    pre.upload(frames, stream, formats)
    pre.run(plan, out.ptr, stream)
    host = np.zeros((len(plan), 3, spec.height, spec.width), np.float16 if half else np.float32)
    out.download(host, stream)
    stream.synchronize()
    return host


def check_kernels(stream) -> dict[str, float]:
    """Max abs error in grey levels against the reference, per case."""
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (720, 1280, 3), dtype=np.uint8) for _ in range(2)]
    boxes = validate_boxes([[0, 0, 1280, 720], [-20, -10, 90, 200], [1200, 600, 1300, 760], [400, 100, 401, 101],
                            [300, 50, 520, 600]], frames[0].shape)
    results = {}
    for resize in ("stretch", "letterbox"):
        spec = InputSpec(height=256, width=128, resize=resize)
        plan = plan_crops(np.array([0, 1, 0, 1, 0]), boxes, spec)
        error = np.abs(gpu_preprocess(frames, plan, spec, stream) - preprocess_reference(frames, plan, spec))
        results[f"box {resize}"] = float(error.max() * max(spec.std))
        half = gpu_preprocess(frames, plan, spec, stream, half=True).astype(np.float32)
        results[f"box {resize} fp16"] = float(np.abs(half - preprocess_reference(frames, plan, spec)).max() * max(spec.std))
    nv12 = rng.integers(0, 256, (720 * 3 // 2, 1280), dtype=np.uint8)
    spec = InputSpec(height=64, width=64, resize="letterbox")
    plan = plan_crops(np.zeros(len(boxes), int), boxes, spec)
    error = np.abs(gpu_preprocess([nv12], plan, spec, stream, formats=[1])
                   - preprocess_reference([nv12_to_bgr_reference(nv12, 720, 1280)], plan, spec))
    results["nv12"] = float(error.max() * max(spec.std))
    face = InputSpec(height=64, width=64, mean=(127.5,) * 3, std=(128.0,) * 3)
    landmarks = np.array([[[500, 300], [560, 296], [530, 330], [508, 360], [552, 358]],
                          [[5, 6], [30, 4], [16, 18], [6, 30], [26, 30]]], np.float64)
    plan = plan_crops(np.zeros(2, int), validate_boxes([[480, 270, 580, 380], [0, 0, 36, 36]], frames[0].shape), face,
                      landmarks)
    results["face warp"] = float(np.abs(gpu_preprocess(frames, plan, face, stream)
                                        - preprocess_reference(frames, plan, face)).max() * 128.0)
    return results


def bandwidth(stream, events) -> dict[str, float]:
    """Crop kernel bytes (source pixels read + outputs written) per second vs a device-to-device copy."""
    frames, index, boxes = bench_scene(128, frame_hw=(1080, 1920), frames=8)
    spec = InputSpec(height=256, width=128)
    valid = validate_boxes(boxes, frames[0].shape)
    plan = plan_crops(index, valid, spec)
    device_frames = []
    for frame in frames:
        buffer = cuda.DeviceBuffer(frame.nbytes)
        buffer.upload(frame, stream)
        device_frames.append((buffer, frame))
    stream.synchronize()

    class View:  # device frame exposed to the preprocessor, zero-copy
        def __init__(self, buffer, frame):
            self.__cuda_array_interface__ = {"shape": frame.shape, "typestr": "|u1", "data": (buffer.ptr, False),
                                             "version": 3, "strides": None}

    views = [View(b, f) for b, f in device_frames]
    out = cuda.DeviceBuffer(len(plan) * 3 * spec.height * spec.width * 4)
    pre = GpuPreprocessor(spec, len(plan))
    pre.upload(views, stream)
    kernel_ms = events.time_ms(lambda: pre.run(plan, out.ptr, stream), 50)
    box_area = (valid[:, 2] - valid[:, 0]) * (valid[:, 3] - valid[:, 1])
    read = float(np.minimum(box_area, 4 * spec.height * spec.width).sum() * 3)
    written = float(len(plan) * 3 * spec.height * spec.width * 4)
    size = 256 << 20
    a, b = cuda.DeviceBuffer(size), cuda.DeviceBuffer(size)
    rt = cuda._runtime()
    copy_ms = events.time_ms(lambda: cuda.check(rt.cudaMemcpyAsync(b.ptr, a.ptr, size,
                                                                   rt.cudaMemcpyKind.cudaMemcpyDeviceToDevice,
                                                                   stream.handle), "cudaMemcpyAsync"), 20)
    kernel_gbs = (read + written) / kernel_ms / 1e6
    copy_gbs = 2 * size / copy_ms / 1e6
    return {"crops": len(plan), "kernel_ms": kernel_ms, "kernel_GBps": kernel_gbs, "d2d_copy_GBps": copy_gbs,
            "ratio": kernel_gbs / copy_gbs}


def end_to_end(stream, seconds: float) -> dict[str, float]:
    """8 cameras x 16 boxes: GPU preprocessing + torch (CUDA) inference vs OpenCV + ONNX Runtime on 2 threads."""
    import torch

    from edgereid.runtime.backends import load_backend
    from edgereid.runtime.backends.torch import TorchBackend
    from edgereid.runtime.model import CropModel

    frames, index, boxes = bench_scene(128, frame_hw=(1080, 1920), frames=8)
    card = read_card(MODELS["reid"] / "model.onnx")
    valid = validate_boxes(boxes, frames[0].shape)
    plan = plan_crops(index, valid, card.input)
    cpu = CropModel(load_backend(MODELS["reid"] / "model.onnx", threads=2), max_batch=128)

    def rate(fn) -> float:
        fn()
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            fn()
            count += 1
        return count * len(plan) / (time.perf_counter() - start)

    cpu_rate = rate(lambda: cpu.run(frames, plan))
    gpu_model = TorchBackend(MODELS["reid"] / "model.safetensors", device="cuda")
    batch = torch.empty((len(plan), 3, card.input.height, card.input.width), device="cuda")
    pre = GpuPreprocessor(card.input, len(plan))
    torch_stream = torch.cuda.ExternalStream(int(stream.handle))

    def gpu_step() -> None:
        pre.upload(frames, stream)  # host frames: one copy per frame, not per box
        pre.run(plan, batch.data_ptr(), stream)
        with torch.cuda.stream(torch_stream):
            out = gpu_model.infer_device(batch)["embedding"]
        out.cpu()

    gpu_rate = rate(gpu_step)
    return {"crops_per_frame_set": len(plan), "cpu_crops_per_s": cpu_rate, "gpu_crops_per_s": gpu_rate,
            "ratio": gpu_rate / cpu_rate}


def tensorrt_parity(tmp: Path) -> dict[str, object]:
    """Engines (fp32, fp16) of the bundled students against ONNX Runtime, where TensorRT imports."""
    try:
        from edgereid.exporting.engine import build_engine
        from edgereid.engine_file import import_tensorrt

        import_tensorrt("tensorrt")
    except Exception as exc:  # noqa: BLE001 - reported, not hidden
        return {"skipped": f"TensorRT not available: {str(exc).splitlines()[0]}"}
    from edgereid.runtime.backends import load_backend

    results = {}
    for name, folder in MODELS.items():
        if name == "keypoints":
            continue
        onnx_path = folder / "model.onnx"
        card = read_card(onnx_path)
        batch = np.random.default_rng(0).normal(size=(16, 3, card.input.height, card.input.width)).astype(np.float32)
        reference = load_backend(onnx_path).infer(batch)["embedding"]
        engine = build_engine(onnx_path, tmp / f"{name}.engine", flavour="tensorrt").engine
        out = load_backend(engine).infer(batch)["embedding"]
        results[f"{name} fp32 min cosine"] = float((reference * out).sum(1).min())
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="gpu_check.json")
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    ok, why = gpu_available()
    report: dict[str, object] = {"date": time.strftime("%Y-%m-%d %H:%M"), "environment": environment()}
    if not ok:
        report["skipped"] = f"no usable GPU: {why}"
    else:
        stream = cuda.Stream()
        events = Events(stream)
        for name, step in (("kernels_max_abs_error_grey", lambda: check_kernels(stream)),
                           ("bandwidth", lambda: bandwidth(stream, events)),
                           ("end_to_end_8x16", lambda: end_to_end(stream, args.seconds)),
                           ("tensorrt", lambda: tensorrt_parity(Path(args.out).parent))):
            try:
                report[name] = step()
            except Exception as exc:  # noqa: BLE001 - one failing part must not hide the others' numbers
                report[name] = {"error": f"{type(exc).__name__}: {exc}"}
            print(name, json.dumps(report[name], indent=1), flush=True)
    Path(args.out).write_text(json.dumps(report, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
