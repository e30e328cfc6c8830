"""The demo: a multi-camera scene from the synthetic world through the pipeline, measured.

The world's person and face boxes stand in for the app's detector. Identities seen by camera 0 are
enrolled in the ReID and face galleries; the other cameras' frames are then submitted as a gateway
would (interleaved across cameras, through ``submit``/``results``) twice: all at once, to measure
throughput (crops/s), and at the cameras' frame rate, to measure per-frame latency from submit to
result as a live gateway sees it. The demo reports re-ID rank-1/mAP, keypoint PCK@0.1, face top-1,
throughput and latency. torch is not imported.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edgereid.data.synthetic import SceneFrame, World, WorldConfig, frame_boxes, frame_faces, to_pixel_centres
from edgereid.errors import InputError
from edgereid.eval.baselines import (colour_histogram_embedding, mean_pose, place_mean_pose,
                                     raw_pixel_embedding)
from edgereid.eval.metrics import cosine_distance_matrix, evaluate_rank, identification_top1, pck
from edgereid.gallery import Gallery
from edgereid.pipeline import Pipeline
from edgereid.ops.geometry import plan_crops, validate_boxes
from edgereid.ops.preprocess import preprocess_batch
from edgereid.types import FaceBoxes, FrameResult
from edgereid.viz import annotate
from edgereid.plots import contact_sheet


@dataclass(frozen=True)
class DemoOptions:
    """Models, scene and output folder of one demo run."""

    reid: str
    keypoints: str | None = None
    face: str | None = None
    out: Path = Path("edgereid-demo")
    seed: int = 1000
    identities: int = 20
    cameras: int = 3
    frames: int = 100
    max_batch: int = 32
    pace: float = 4.0
    people_per_frame: int = 5
    reuse_tracks: bool = False  # submit ground-truth ids as track ids (a perfect tracker): embed on change only


def _label(pid: int) -> str:
    return f"id{pid:04d}"


def _render(world: World, options: DemoOptions) -> dict[int, list[SceneFrame]]:
    return {cam: list(world.scene(cam, options.frames, pace=options.pace, people_per_frame=options.people_per_frame))
            for cam in range(options.cameras)}


def _enroll(pipeline: Pipeline, frames: list[SceneFrame]) -> tuple[Gallery, Gallery | None, list]:
    with_faces = "face_model" in pipeline.models
    results = pipeline.process([f.frame for f in frames], [frame_boxes(f) for f in frames], "0",
                               [f.timestamp for f in frames], [frame_faces(f) for f in frames] if with_faces else None)
    reid = Gallery(pipeline.models["reid_model"].card)
    face = Gallery(pipeline.models["face_model"].card) if with_faces else None
    for frame, result in zip(frames, results):
        for obj, embedding in zip(frame.persons, result.persons.embeddings):
            reid.enroll(_label(obj.pid), embedding)
        if face is not None:
            for obj, embedding in zip(frame.faces, result.faces.embeddings):
                face.enroll(_label(obj.pid), embedding)
    return reid, face, results


def _interleave(scenes: dict[int, list[SceneFrame]]) -> list[SceneFrame]:
    """Query frames in arrival order: frame t of every camera before frame t + 1."""
    cams = [c for c in scenes if c != 0]
    return [scenes[c][t] for t in range(max(len(scenes[c]) for c in cams)) for c in cams if t < len(scenes[c])]


def run_demo(options: DemoOptions) -> dict[str, object]:
    """Run the demo, write the video and contact sheet, print a summary; return the metrics."""
    if options.cameras < 2:
        raise InputError("the demo needs at least 2 cameras: camera 0 enrolls, the others query",
                         got=f"{options.cameras} camera", fix="pass --cameras 2 or more")
    world = World(WorldConfig(seed=options.seed, num_identities=options.identities, num_cameras=options.cameras))
    cameras = {str(c.cam_id): {"modality": c.modality} for c in world.cameras}
    config = {"reid_model": options.reid, "keypoint_model": options.keypoints, "face_model": options.face,
              "max_batch": options.max_batch, "max_wait_ms": 20.0, "queue_size": 256, "cameras": cameras}
    with Pipeline(config) as pipeline:  # the models load (and are checked) before the minutes of rendering
        print(f"rendering {options.cameras} cameras x {options.frames} frames, {options.identities} identities "
              f"(seed {options.seed}) ...")
        scenes = _render(world, options)
        reid_gallery, face_gallery, enrolled = _enroll(pipeline, scenes[0])
        pipeline.reid_gallery, pipeline.face_gallery = reid_gallery, face_gallery
        queries = _interleave(scenes)
        with_faces = face_gallery is not None
        start = time.perf_counter()
        _submit(pipeline, queries, with_faces, realtime=False, tracks=options.reuse_tracks)
        wall = time.perf_counter() - start
        pipeline.forget_tracks()  # the live pass replays the same footage: its tracks start anew
        print(f"live pass: {len(queries)} frames at {10 * (options.cameras - 1)} frames/s ...")
        results = _submit(pipeline, queries, with_faces, realtime=True, tracks=options.reuse_tracks)
        skeleton = pipeline.models["keypoint_model"].card.skeleton if options.keypoints else ()
    metrics = _measure(scenes[0], enrolled, queries, results)
    face_spec = pipeline.models["face_model"].card.input if options.face else None
    baselines = _baselines(scenes[0], queries, face_spec)
    crops = sum(len(r.persons) + len(r.faces) for r in results)
    latencies = np.array([r.latency_ms for r in results])
    metrics.update({"frames": len(results), "crops": crops, "embedded_crops": _embedded_crops(results),
                    "crops_per_s": round(crops / wall, 1),
                    "p50_ms": round(float(np.percentile(latencies, 50)), 1),
                    "p99_ms": round(float(np.percentile(latencies, 99)), 1), "backend": "onnxruntime-cpu"})
    options.out.mkdir(parents=True, exist_ok=True)
    video = _write_video(queries, results, skeleton, options.out / "demo.mp4")
    sheet = _write_sheet(scenes[0], enrolled, queries, results, options.out / "contact_sheet.png")
    _print_summary(metrics, baselines, video, sheet)
    metrics.update({f"baseline_{k}": v for k, v in baselines.items()})
    return metrics


def _submit(pipeline: Pipeline, queries: list[SceneFrame], with_faces: bool, realtime: bool,
            tracks: bool = False) -> list[FrameResult]:
    """Submit every query frame (at its timestamp when ``realtime``) and collect results in order. With
    ``tracks`` each person's and face's identity is its track id (a face's track is its person's)."""
    start = time.perf_counter()
    for frame in queries:
        if realtime:
            time.sleep(max(0.0, start + frame.timestamp - time.perf_counter()))
        pipeline.submit(frame.frame, frame_boxes(frame), str(frame.cam_id), frame.timestamp,
                        faces=frame_faces(frame) if with_faces else None,
                        track_ids=[p.pid for p in frame.persons] if tracks else None,
                        face_track_ids=[f.pid for f in frame.faces] if tracks and with_faces else None)
    return sorted(pipeline.results(wait=True), key=lambda r: r.sequence)


def _embedded_crops(results: list[FrameResult]) -> int:
    """Person and face crops whose embedding was computed (not reused from a track, not skipped as too small)."""
    def computed(rows, skipped: np.ndarray | None) -> int:
        mask = np.ones(len(rows), bool) if rows.embeddings is not None else np.zeros(len(rows), bool)
        if rows.reused is not None:
            mask &= ~rows.reused
        if skipped is not None:
            mask &= ~skipped
        return int(mask.sum())

    return sum(computed(r.persons, None) + computed(r.faces, r.faces.too_small) for r in results)


def _rank(q_emb: np.ndarray, q_pid: np.ndarray, q_cam: np.ndarray, g_emb: np.ndarray,
          g_pid: np.ndarray) -> tuple[float, float]:
    """Rank-1 and mAP of the queries whose identity was enrolled (camera 0 is the gallery)."""
    known = np.isin(q_pid, g_pid)
    cmc, mean_ap = evaluate_rank(cosine_distance_matrix(q_emb[known], g_emb), q_pid[known], g_pid,
                                 q_cam[known], np.zeros(len(g_pid), int))
    return round(float(cmc[0]), 4), round(float(mean_ap), 4)


def _face_top1(q_emb: np.ndarray, q_pid: np.ndarray, g_emb: np.ndarray, g_pid: np.ndarray) -> float | None:
    keep = np.isin(q_pid, g_pid)
    if not keep.any() or not len(g_emb):
        return None
    return round(identification_top1(q_emb[keep], q_pid[keep], g_emb, g_pid), 4)


def _person_truth(frames: list[SceneFrame]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """pids, camera ids, boxes and pixel-centre keypoints of every person in ``frames``."""
    persons = [(o, f.cam_id) for f in frames for o in f.persons]
    return (np.array([o.pid for o, _ in persons]), np.array([c for _, c in persons]),
            np.array([o.box for o, _ in persons], np.float32).reshape(-1, 4),
            to_pixel_centres(np.array([o.keypoints for o, _ in persons], np.float32).reshape(-1, 17, 3)))


def _face_pids(frames: list[SceneFrame]) -> np.ndarray:
    return np.array([o.pid for f in frames for o in f.faces])


def _measure(enroll_frames: list[SceneFrame], enrolled: list[FrameResult], queries: list[SceneFrame],
             results: list[FrameResult]) -> dict[str, object]:
    g_pid, _, _, _ = _person_truth(enroll_frames)
    q_pid, q_cam, boxes, truth = _person_truth(queries)
    rank1, mean_ap = _rank(np.concatenate([r.persons.embeddings for r in results]), q_pid, q_cam,
                           np.concatenate([r.persons.embeddings for r in enrolled]), g_pid)
    metrics: dict[str, object] = {"reid_rank1": rank1, "reid_map": mean_ap}
    if results[0].persons.keypoints is not None:
        pred = np.concatenate([r.persons.keypoints for r in results])
        metrics["keypoint_pck"] = round(pck(pred, truth[..., :2], truth[..., 2] > 0, boxes, 0.1), 4)
    if results[0].faces.embeddings is not None:
        top1 = _face_top1(np.concatenate([r.faces.embeddings for r in results]), _face_pids(queries),
                          np.concatenate([r.faces.embeddings for r in enrolled]), _face_pids(enroll_frames))
        if top1 is not None:
            metrics["face_top1"] = top1
    return metrics


# The keypoint student's training seed (samples/configs/keypoints_supervised.yaml): the mean pose
# baseline comes from a smaller sample of that world (40 identities, 3 cameras), never the demo's.
MEAN_POSE_WORLD_SEED = 101


def _baselines(enroll_frames: list[SceneFrame], queries: list[SceneFrame],
               face_spec) -> dict[str, object]:
    """The trivial baselines on exactly the demo's crops and ground truth."""
    def crops(frames: list[SceneFrame]) -> list[np.ndarray]:
        return [_crop(f.frame, o.box) for f in frames for o in f.persons]

    g_pid, _, _, _ = _person_truth(enroll_frames)
    q_pid, q_cam, boxes, truth = _person_truth(queries)
    rank1, mean_ap = _rank(colour_histogram_embedding(crops(queries)), q_pid, q_cam,
                           colour_histogram_embedding(crops(enroll_frames)), g_pid)
    train = World(WorldConfig(seed=MEAN_POSE_WORLD_SEED, num_identities=40, num_cameras=3))
    _, _, train_boxes, train_truth = _person_truth([f for cam in range(3) for f in train.scene(cam, 30, pace=4.0)])
    guess = place_mean_pose(mean_pose(train_truth, train_boxes), boxes)
    out: dict[str, object] = {"reid_rank1": rank1, "reid_map": mean_ap,
                              "keypoint_pck": round(pck(guess, truth[..., :2], truth[..., 2] > 0, boxes, 0.1), 4)}
    if face_spec is not None:
        top1 = _face_top1(_aligned_pixels(queries, face_spec), _face_pids(queries),
                          _aligned_pixels(enroll_frames, face_spec), _face_pids(enroll_frames))
        if top1 is not None:
            out["face_top1"] = top1
    return out


def _aligned_pixels(frames: list[SceneFrame], spec) -> np.ndarray:
    """Raw-pixel embeddings of every face, aligned exactly as the face model's input."""
    parts = []
    for frame in frames:
        if frame.faces:
            boxes = validate_boxes(np.stack([f.box for f in frame.faces]), frame.frame.shape)
            landmarks = to_pixel_centres(np.stack([f.landmarks for f in frame.faces])).astype(np.float64)
            plan = plan_crops(np.zeros(len(boxes), int), boxes, spec, landmarks)
            parts.append(raw_pixel_embedding(preprocess_batch([frame.frame], plan, spec)))
    return np.concatenate(parts) if parts else np.zeros((0, spec.height * spec.width), np.float32)


def _write_video(queries: list[SceneFrame], results: list[FrameResult], skeleton, path: Path) -> Path:
    height, width = queries[0].frame.shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (width, height))
    for frame, result in zip(queries, results):
        writer.write(annotate(frame.frame, result, skeleton))
    writer.release()
    return path


def _crop(frame: np.ndarray, box: np.ndarray) -> np.ndarray:
    x1, y1, x2, y2 = np.rint(box).astype(int)
    return frame[max(y1, 0):max(y2, y1 + 1), max(x1, 0):max(x2, x1 + 1)]


def _write_sheet(enroll_frames, enrolled, queries, results, path: Path, count: int = 32) -> Path:
    """Query crops beside the camera-0 crop of their top-1 identity."""
    example = defaultdict(lambda: None)
    for frame in enroll_frames:
        for obj in frame.persons:
            if example[_label(obj.pid)] is None:
                example[_label(obj.pid)] = _crop(frame.frame, obj.box)
    pairs = []
    for frame, result in zip(queries, results):
        for obj, identity, score in zip(frame.persons, result.persons.identities, result.persons.scores):
            if identity is not None and example[identity] is not None and len(pairs) < count:
                pairs.append((_crop(frame.frame, obj.box), example[identity], identity == _label(obj.pid),
                              f"{_label(obj.pid)}->{identity} {score:.2f}"))
    return contact_sheet(pairs, path)


def _print_summary(metrics: dict[str, object], baselines: dict[str, object], video: Path, sheet: Path) -> None:
    print("edgereid demo: ReID, keypoints and faces on ONNX Runtime (CPU)")
    print(f"  {'metric':14s} {'model':>8s} {'trivial baseline':>18s}")
    for key in ("reid_rank1", "reid_map", "keypoint_pck", "face_top1"):
        if key in metrics:
            print(f"  {key:14s} {metrics[key]:8.4f} {baselines.get(key, float('nan')):18.4f}")
    print("  (baselines: colour histograms for ReID, the mean pose in the box, raw-pixel cosine for faces)")
    print(f"  {metrics['frames']} frames, {metrics['crops']} crops ({metrics['embedded_crops']} embedded), "
          f"{metrics['crops_per_s']} crops/s, "
          f"latency p50 {metrics['p50_ms']} ms, p99 {metrics['p99_ms']} ms (submit to result, per frame)")
    print(f"  annotated video: {video}\n  contact sheet:   {sheet}")
