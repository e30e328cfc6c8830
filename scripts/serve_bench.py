#!/usr/bin/env python3
"""Requests/s and latency through `edgereid serve` (Triton over HTTP, 8 concurrent clients) against the same frames
through `Pipeline.process` in this process, on the same machine; one frame with 5 person boxes per request.

    python scripts/serve_bench.py [--requests 400] [--clients 8] [--config pipeline.yaml]

Starts the server on free loopback ports and stops it at the end (needs the serve extra and nvidia-pytriton).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _scene(count: int) -> tuple[list[np.ndarray], np.ndarray]:
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (360, 640, 3), dtype=np.uint8) for _ in range(count)]
    x = np.array([20, 140, 260, 380, 500], np.float32)
    boxes = np.stack([x, np.full(5, 40), x + 90, np.full(5, 320)], axis=1).astype(np.float32)
    return frames, boxes


def _summary(label: str, latencies_ms: list[float], seconds: float) -> str:
    p50, p99 = np.percentile(latencies_ms, [50, 99])
    return f"| {label} | {len(latencies_ms) / seconds:.1f} | {p50:.1f} | {p99:.1f} |"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--config", help="pipeline YAML (default: the bundled ReID and face models)")
    args = parser.parse_args()
    import tritonclient.http as http_client

    import edgereid

    config = args.config
    if config is None:
        config = Path(tempfile.mkdtemp()) / "pipeline.yaml"
        config.write_text(f"reid_model: {ROOT}/samples/models/reid/model.onnx\n"
                          f"face_model: {ROOT}/samples/models/face/model.onnx\nmax_batch: 32\nmax_wait_ms: 5\n")
    frames, boxes = _scene(16)
    rows = ["| path | requests/s | p50 ms | p99 ms |", "|---|---|---|---|"]
    with edgereid.Pipeline(config) as pipeline:
        latencies, start = [], time.perf_counter()
        for i in range(args.requests):
            t0 = time.perf_counter()
            pipeline.process([frames[i % len(frames)]], [boxes], "cam0")
            latencies.append((time.perf_counter() - t0) * 1000)
        rows.append(_summary("in process, Pipeline.process, one frame per call", latencies,
                             time.perf_counter() - start))
    from edgereid.serving.process import ServerProcess

    server = ServerProcess(config)
    http = server.http
    try:
        latencies, lock = [], threading.Lock()

        def client(worker: int) -> None:
            connection = http_client.InferenceServerClient(f"127.0.0.1:{http}")
            for i in range(worker, args.requests, args.clients):
                frame = frames[i % len(frames)]
                inputs = [http_client.InferInput("frame", list(frame.shape), "UINT8"),
                          http_client.InferInput("boxes", list(boxes.shape), "FP32"),
                          http_client.InferInput("camera_id", [1], "BYTES")]
                inputs[0].set_data_from_numpy(frame)
                inputs[1].set_data_from_numpy(boxes)
                inputs[2].set_data_from_numpy(np.array([f"cam{worker}".encode()], dtype=object))
                t0 = time.perf_counter()
                connection.infer("edgereid_pipeline", inputs)
                with lock:
                    latencies.append((time.perf_counter() - t0) * 1000)

        threads = [threading.Thread(target=client, args=(w,)) for w in range(args.clients)]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        rows.append(_summary(f"edgereid serve, HTTP, {args.clients} concurrent clients", latencies,
                             time.perf_counter() - start))
    finally:
        server.stop()
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
