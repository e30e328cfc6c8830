#!/usr/bin/env python3
"""Throughput of ONNX graphs on edgereid's OpenVINO backend beside its ONNX Runtime backend at FP32, timed in turn
in one loop so that every ratio sees the same machine (needs the ``openvino`` extra).

    python scripts/openvino_probe.py reid256.onnx reid256_int8_cpu.onnx reid256_int8_tensorrt.onnx

The first file is the FP32 baseline; every file runs on ONNX Runtime and on OpenVINO at f32 and bf16 (INT8
graphs keep their Q/DQ precision; the hint applies to their remaining float layers); graphs with uint8 input
(``edgereid convert --uint8-input``) get the same crops as pixels. Beside each row: the embedding cosine to ONNX Runtime FP32 (mean, min) and the rank-1 agreement (each crop queries the
others, :func:`edgereid.exporting.gate.rank1_agreement`) on 96 person crops of a held-out synthetic world.
"""

from __future__ import annotations

import argparse
import sys
import tempfile

import numpy as np


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", help="FP32 baseline first, then the graphs to compare")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=20.0, help="total timing, shared by the rows")
    args = parser.parse_args()
    from edgereid.errors import MissingDependencyError
    from edgereid.eval.bench import time_interleaved
    from edgereid.runtime.backends import load_backend
    from edgereid.exporting.gate import rank1_agreement
    from edgereid.exporting.pixel_input import to_pixels
    from edgereid.exporting.precision import synthetic_gate_crops

    baseline = load_backend(args.models[0])
    crops, _ = synthetic_gate_crops(baseline.card)

    def model_input(backend, batch: np.ndarray) -> np.ndarray:  # the baseline's float crops, as pixels for uint8 graphs
        return to_pixels(batch, baseline.card) if backend.card.input.dtype == "uint8" else batch

    timed = np.resize(crops, (args.batch, *crops.shape[1:]))
    rows = [("onnxruntime", path, baseline if i == 0 else load_backend(path)) for i, path in enumerate(args.models)]
    try:
        with tempfile.TemporaryDirectory() as cache:
            from edgereid.runtime.backends.openvino import OpenVinoBackend

            for path in args.models:
                for precision in ("f32", "bf16"):
                    rows.append((f"openvino {precision}", path, OpenVinoBackend(path, precision=precision, cache_dir=cache)))
    except MissingDependencyError as exc:
        print(f"openvino_probe: {exc}", file=sys.stderr)
        return 2
    times = time_interleaved([lambda b=b, x=model_input(b, timed): b.infer(x) for _, _, b in rows], 2, 5, args.seconds)
    rates = [args.batch / (t.mean() / 1000.0) for t in times]
    print(f"batch {args.batch}, {len(times[0])} calls each; {rows[-1][2].isa}")
    name = baseline.card.outputs[0].name
    reference = np.concatenate([baseline.infer(crops[i:i + args.batch])[name] for i in range(0, len(crops), args.batch)])
    print("| runtime | graph | crops/s | vs ONNX Runtime FP32 | cosine to FP32 mean / min | rank-1 agreement |")
    print("|---|---|---|---|---|---|")
    for (runtime, path, backend), rate in zip(rows, rates):
        out = np.concatenate([backend.infer(model_input(backend, crops[i:i + args.batch]))[name]
                              for i in range(0, len(crops), args.batch)])
        out, ref = out.reshape(len(out), -1), reference.reshape(len(reference), -1)  # heatmaps compare flattened
        cosine = (out * ref).sum(1) / (np.linalg.norm(out, axis=1) * np.linalg.norm(ref, axis=1))
        agreement = f"{rank1_agreement(ref, out):.3f}" if baseline.card.embedding_dim else "-"
        print(f"| {runtime} | {path} | {rate:.1f} | {rate / rates[0]:.2f}x | {cosine.mean():.5f} / {cosine.min():.5f} "
              f"| {agreement} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
