"""Soak the pipeline: stream frames from several cameras through submit/results and report resident memory.

Every tenth frame is hostile (a NaN box, a degenerate face, boxes outside the frame, a grey frame) and must be
refused at submit with a typed error; the rest must come back as results. Resident memory (RSS) is sampled
as frames go by; a pipeline that keeps something per frame grows, one that does not stays flat after warm-up.

    python scripts/soak.py --frames 200000 --out soak.json      # the run recorded in BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edgereid.errors import EdgeReidError  # noqa: E402
from edgereid.pipeline import Pipeline  # noqa: E402
from edgereid.types import FaceBoxes  # noqa: E402


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def hostile(i: int, frame: np.ndarray) -> tuple[np.ndarray, list, FaceBoxes | None]:
    """One of four bad submissions, by ``i``."""
    kind = i % 4
    if kind == 0:
        return frame, [[10, 10, float("nan"), 100]], None
    if kind == 1:
        return frame, [[10, 10, 60, 120]], FaceBoxes([[20, 20, 50, 50]], landmarks=np.full((1, 5, 2), 30.0))
    if kind == 2:
        return frame, [[1000, 1000, 1100, 1100]], None
    return frame[..., 0], [[10, 10, 60, 120]], None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=20_000)
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--model", default=str(REPO / "samples/models/reid/model.onnx"))
    parser.add_argument("--face-model", default=str(REPO / "samples/models/face/model.onnx"))
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (240, 320, 3), dtype=np.uint8) for _ in range(8)]
    config = {"reid_model": args.model, "face_model": args.face_model, "max_batch": 32, "max_wait_ms": 5.0,
              "queue_size": 64}
    samples, refused, results, failed = [], 0, 0, 0
    started = time.perf_counter()
    with Pipeline(config) as pipeline:
        for i in range(args.frames):
            frame = frames[i % len(frames)]
            boxes, faces = [[10, 10, 80, 200], [150, 30, 230, 230]], FaceBoxes([[20, 20, 52, 52]])
            if i % 10 == 9:
                frame, boxes, faces = hostile(i // 10, frame)
            try:
                pipeline.submit(frame, boxes, str(i % args.cameras), i / 10.0, faces=faces)
            except EdgeReidError:
                refused += 1
            for result in pipeline.results():
                results += 1
                failed += not result.ok
            if i % max(1, args.frames // 50) == 0:
                samples.append({"frame": i, "rss_mb": round(rss_mb(), 1),
                                "seconds": round(time.perf_counter() - started, 1)})
        for result in pipeline.results(wait=True, timeout=60):
            results += 1
            failed += not result.ok
        stats = pipeline.stats
    warm = [s["rss_mb"] for s in samples[len(samples) // 10:]]
    report = {"frames": args.frames, "refused_at_submit": refused, "results": results, "failed_results": failed,
              "stats": stats, "seconds": round(time.perf_counter() - started, 1),
              "rss_mb_after_warmup_min_max": [min(warm), max(warm)], "rss_mb_final": round(rss_mb(), 1),
              "samples": samples}
    print(json.dumps({k: v for k, v in report.items() if k != "samples"}))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
