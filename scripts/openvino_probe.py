#!/usr/bin/env python3
"""Throughput of ONNX graphs under OpenVINO (CPU) beside ONNX Runtime FP32, in one run, at batch 32.

A measurement probe for the CPU-speed issue until the OpenVINO backend lands; needs ``pip install openvino``.

    python scripts/openvino_probe.py reid256.onnx reid256_int8_tensorrt.onnx reid256_int8_cpu.onnx

The first file is the FP32 baseline (run by ONNX Runtime, and by OpenVINO at f32 and bf16); the others run by
OpenVINO at f32 (INT8 graphs keep their Q/DQ precision).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Callable

import numpy as np


def crops_per_second(run: Callable[[], object], batch: int, seconds: float) -> float:
    """Calls of ``run`` for ``seconds`` after one warm-up call, as crops per second."""
    run()
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        run()
        calls += 1
    return batch * calls / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", help="FP32 baseline first, then the graphs to compare")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=4.0)
    args = parser.parse_args()
    try:
        import openvino as ov
    except ImportError:
        print("openvino_probe: needs OpenVINO: pip install openvino", file=sys.stderr)
        return 2
    import onnxruntime as ort

    core = ov.Core()
    baseline = ort.InferenceSession(args.models[0], providers=["CPUExecutionProvider"])
    shape = [args.batch, *baseline.get_inputs()[0].shape[1:]]
    pixels = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    name = baseline.get_inputs()[0].name
    rows = [("onnxruntime fp32", args.models[0],
             crops_per_second(lambda: baseline.run(None, {name: pixels}), args.batch, args.seconds))]
    runs = [(args.models[0], "f32"), (args.models[0], "bf16")] + [(path, "f32") for path in args.models[1:]]
    for path, hint in runs:
        compiled = core.compile_model(core.read_model(path), "CPU", {"INFERENCE_PRECISION_HINT": hint})
        request = compiled.create_infer_request()
        rows.append((f"openvino {hint}", path,
                     crops_per_second(lambda: request.infer({0: pixels}), args.batch, args.seconds)))
    print(f"openvino {ov.__version__}, CPU capabilities {core.get_property('CPU', 'OPTIMIZATION_CAPABILITIES')}")
    for runtime, path, rate in rows:
        print(f"| {runtime} | {path} | {rate:.1f} | {rate / rows[0][2]:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
