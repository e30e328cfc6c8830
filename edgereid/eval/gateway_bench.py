"""The gateway benchmark: how many cameras one CPU core sustains, for each way of running ReID and face models.

Synthetic cameras (the synthetic world's footage) send 10 frames/s with 5 people and their faces per frame. The
process is pinned to one CPU and every runtime uses one thread. A path sustains N cameras when, with N cameras
sending in real time for ``seconds``, the 99th percentile of the time from a frame's arrival to its result is at
most 200 ms; the benchmark doubles N until a path fails and then bisects. The paths run the same ReID and face
models:

- ``a``: the per-frame loop the way BoxMOT runs ReID: every person box of a frame cropped and resized with
  OpenCV, normalised in NumPy, one batch per frame; the frame's faces likewise (ONNX Runtime FP32);
- ``b``: as ``a`` for persons, and faces one at a time the way InsightFace's ``FaceAnalysis`` runs
  recognition: each face aligned on its landmarks (``norm_crop``), then a batch of one;
- ``c``: the edgereid pipeline on ONNX Runtime FP32 (frames of many cameras batched together);
- ``d``: the pipeline on the best CPU backend: OpenVINO, BF16 where the CPU has it;
- ``e``: ``d`` with track reuse (ground-truth ids as a perfect tracker's): a person or face is embedded only
  when its track is new or has changed.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np

from edgereid.data.synthetic import SceneFrame, World, WorldConfig, frame_boxes, frame_faces
from edgereid.eval.bench import loop_box_tensor, loop_tensor
from edgereid.ops.geometry import plan_crops, validate_boxes

FPS = 10
PEOPLE_PER_FRAME = 5
P99_BUDGET_MS = 200.0
MAX_CAMERAS = 256
PATHS = {"a": "per-frame loop (BoxMOT-style), ONNX Runtime FP32",
         "b": "per-face loop (InsightFace-style faces), ONNX Runtime FP32",
         "c": "edgereid pipeline, ONNX Runtime FP32",
         "d": "edgereid pipeline, OpenVINO",
         "e": "edgereid pipeline, OpenVINO, track reuse"}


@dataclass(frozen=True)
class GatewayRow:
    """One path: the most cameras it sustained on one core and the p99 latency it had there."""

    path: str
    description: str
    cameras_per_core: int
    p99_ms: float | None
    crops_per_s: float | None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@contextmanager
def one_core() -> Iterator[int]:
    """Pin this process to one CPU (the first it may run on) and OpenCV to one thread; restored on exit."""
    allowed = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    threads = cv2.getNumThreads()
    cpu = min(allowed) if allowed else 0
    if allowed:
        os.sched_setaffinity(0, {cpu})
    cv2.setNumThreads(1)
    try:
        yield cpu
    finally:
        cv2.setNumThreads(threads)
        if allowed:
            os.sched_setaffinity(0, allowed)


def render_footage(seconds: float, sources: int = 2, seed: int = 1000) -> list[list[SceneFrame]]:
    """``sources`` cameras of the synthetic world, ``seconds`` of 10 frames/s footage each, 5 people per frame;
    the simulated cameras replay them."""
    world = World(WorldConfig(seed=seed, num_identities=20, num_cameras=sources))
    return [list(world.scene(cam, int(seconds * FPS), people_per_frame=PEOPLE_PER_FRAME, pace=2.0))
            for cam in range(sources)]


class LoopPath:
    """Paths ``a`` and ``b``: one frame at a time, crops prepared one by one in Python (see the module text)."""

    def __init__(self, reid: str, face: str, per_face: bool) -> None:
        from edgereid.runtime.backends import load_backend

        self.reid, self.face = load_backend(reid, threads=1), load_backend(face, threads=1)
        self.per_face = per_face

    def __call__(self, frame: SceneFrame) -> int:
        boxes = validate_boxes(frame_boxes(frame), frame.frame.shape)
        if len(boxes):
            self.reid.infer(np.stack([loop_box_tensor(frame.frame, box, self.reid.card.input) for box in boxes]))
        faces = frame_faces(frame)
        spec = self.face.card.input
        face_boxes = validate_boxes(faces.boxes, frame.frame.shape, "face boxes")
        if self.per_face:
            for box, points in zip(face_boxes, faces.landmarks if faces.landmarks is not None else []):
                warp = plan_crops(np.zeros(1, int), box[None], spec, points[None]).warps[0]
                aligned = cv2.warpAffine(frame.frame, warp, (spec.width, spec.height), flags=cv2.INTER_LINEAR)
                self.face.infer(loop_tensor(aligned, spec)[None])
        elif len(face_boxes):
            self.face.infer(np.stack([loop_box_tensor(frame.frame, box, spec) for box in face_boxes]))
        return len(boxes) + len(face_boxes)

    def close(self) -> None:
        self.reid.close()
        self.face.close()


def _schedule(cameras: int, frames: int) -> list[tuple[float, int, int]]:
    """(arrival time, camera, frame number) of every frame, cameras spread evenly over each 100 ms."""
    return sorted((k / FPS + camera / (FPS * cameras), camera, k) for camera in range(cameras) for k in range(frames))


def _footage_frame(footage: list[list[SceneFrame]], camera: int, k: int) -> SceneFrame:
    source = footage[camera % len(footage)]
    return source[(k + 7 * camera) % len(source)]


def run_loop(path: LoopPath, footage: list[list[SceneFrame]], cameras: int, seconds: float) -> tuple[np.ndarray, int]:
    """Latencies (ms, arrival to result) of a one-frame-at-a-time path fed by ``cameras`` in real time, and crops."""
    latencies, crops = [], 0
    start = time.perf_counter()
    for arrival, camera, k in _schedule(cameras, int(seconds * FPS)):
        wait = start + arrival - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        crops += path(_footage_frame(footage, camera, k))
        latencies.append((time.perf_counter() - start - arrival) * 1000.0)
        if latencies[-1] > 5 * P99_BUDGET_MS:
            break  # overloaded: the queue only grows from here
    return np.array(latencies), crops


def run_pipeline(pipeline, footage: list[list[SceneFrame]], cameras: int, seconds: float,
                 tracks: bool) -> tuple[np.ndarray, int]:
    """As :func:`run_loop` for an :class:`edgereid.Pipeline` (submit at arrival, results read at the end)."""
    pipeline.forget_tracks()
    start, late, crops = time.perf_counter(), {}, 0
    for arrival, camera, k in _schedule(cameras, int(seconds * FPS)):
        wait = start + arrival - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        frame = _footage_frame(footage, camera, k)
        faces = frame_faces(frame)
        sequence = pipeline.submit(frame.frame, frame_boxes(frame), str(camera), arrival, faces=faces,
                                   track_ids=[p.pid for p in frame.persons] if tracks else None,
                                   face_track_ids=[f.pid for f in frame.faces] if tracks else None)
        late[sequence] = (time.perf_counter() - start - arrival) * 1000.0
        crops += len(frame.persons) + len(faces.boxes)
    results = list(pipeline.results(wait=True))
    return np.array([r.latency_ms + late[r.sequence] for r in results]), crops


def _p99(latencies: np.ndarray) -> float:
    return float(np.percentile(latencies, 99)) if len(latencies) else float("inf")


def most_cameras(trial: Callable[[int], tuple[np.ndarray, int]], seconds: float,
                 progress: Callable[[str], None]) -> tuple[int, float | None, float | None]:
    """The largest camera count whose trial keeps p99 within the budget (doubling, then bisecting), its p99 and
    crops/s."""
    best: tuple[int, float | None, float | None] = (0, None, None)
    low, high, cameras = 0, None, 1
    while cameras <= MAX_CAMERAS:
        latencies, crops = trial(cameras)
        p99 = _p99(latencies)
        progress(f"{cameras} cameras: p99 {p99:.0f} ms")
        if p99 <= P99_BUDGET_MS and len(latencies) == cameras * int(seconds * FPS):
            low, best = cameras, (cameras, round(p99, 1), round(crops / seconds, 1))
        else:
            high = cameras
        if high is None:
            cameras *= 2
        elif high - low <= 1:
            break
        else:
            cameras = (low + high) // 2
    return best


def _pipeline(reid: str, face: str, backend: str, precision: str | None):
    from edgereid.pipeline import Pipeline

    return Pipeline({"reid_model": reid, "face_model": face, "backend": backend, "precision": precision,
                              "threads": 1, "max_batch": 32, "max_wait_ms": P99_BUDGET_MS / 4, "queue_size": 4096,
                              "results_size": 1_000_000,
                              "queue_megabytes": 8192.0})


def bench_gateway(reid: str, face: str, paths: str = "abcde", seconds: float = 4.0, precision: str | None = None,
                  progress: Callable[[str], None] = lambda _: None) -> list[GatewayRow]:
    """One :class:`GatewayRow` per path (see the module docstring). ``precision`` is OpenVINO's for ``d``/``e``
    (default: bf16 where the CPU has it, else f32). Without OpenVINO, ``d`` and ``e`` are skipped."""
    from edgereid.errors import MissingDependencyError
    from edgereid.runtime.backends.openvino import native_bf16

    precision = precision or ("bf16" if native_bf16() else "f32")

    footage = render_footage(seconds + 1.0)
    rows = []
    with one_core():
        for path in paths:
            progress(f"path {path}: {PATHS[path]}")
            try:
                runner = (LoopPath(reid, face, per_face=path == "b") if path in "ab" else
                          _pipeline(reid, face, "onnxruntime" if path == "c" else "openvino",
                                    None if path == "c" else precision))
            except MissingDependencyError as exc:
                progress(f"path {path} skipped: {str(exc).splitlines()[0]}")
                continue
            try:
                if path in "ab":
                    trial = lambda n: run_loop(runner, footage, n, seconds)  # noqa: E731
                else:
                    trial = lambda n: run_pipeline(runner, footage, n, seconds, tracks=path == "e")  # noqa: E731
                description = PATHS[path] + (f" ({precision})" if path in "de" else "")
                rows.append(GatewayRow(path, description, *most_cameras(trial, seconds, progress)))
            finally:
                runner.close()
    return rows


def plot_gateway(rows: list[GatewayRow], path: str | Path) -> Path:
    """Cameras per core of each path (needs matplotlib)."""
    from edgereid.plots import bar_plot

    return bar_plot({f"({r.path}) {r.description}": r.cameras_per_core for r in rows}, path,
                    f"cameras one core sustains at p99 <= {P99_BUDGET_MS:.0f} ms (10 fps, 5 people)", "cameras")
