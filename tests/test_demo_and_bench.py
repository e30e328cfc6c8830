import json

import cv2
import numpy as np
import pytest

from edgereid.cli import main
from edgereid.demo import DemoOptions, run_demo
from edgereid.eval.baselines import colour_histogram_embedding, mean_pose, place_mean_pose, raw_pixel_embedding
from edgereid.eval.bench import run_bench
from edgereid.runtime.backends import load_backend


def test_demo_runs_end_to_end_and_reports_the_contract_keys(tiny_models, tmp_path):
    options = DemoOptions(reid=str(tiny_models["test_reid"]["onnx"]),
                          keypoints=str(tiny_models["test_keypoints"]["onnx"]),
                          face=str(tiny_models["test_face"]["onnx"]), out=tmp_path, seed=5, identities=6,
                          cameras=2, frames=12, max_batch=8)
    metrics = run_demo(options)
    for key in ("reid_rank1", "reid_map", "keypoint_pck", "face_top1", "frames", "crops", "crops_per_s",
                "p50_ms", "p99_ms", "backend", "baseline_reid_rank1", "baseline_keypoint_pck"):
        assert key in metrics, key
    assert metrics["frames"] == 12 and 0 <= metrics["reid_rank1"] <= 1
    video = cv2.VideoCapture(str(tmp_path / "demo.mp4"))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 12
    assert cv2.imread(str(tmp_path / "contact_sheet.png")) is not None


def test_bench_rows_have_the_contract_keys(tiny_models, tmp_path, capsys):
    backend = load_backend(tiny_models["test_reid"]["onnx"])
    rows = run_bench(backend, [1, 4], e2e=True, warmup=1, iterations=3, min_seconds=0.0)
    assert [r.batch for r in rows] == [1, 4]
    for row in rows:
        assert {"batch", "p50_ms", "p95_ms", "p99_ms", "crops_per_s", "raw_crops_per_s",
                "per_crop_loop_crops_per_s"} <= set(row.to_dict())
        assert row.p50_ms <= row.p95_ms <= row.p99_ms
    out = tmp_path / "bench.json"
    assert main(["bench", "--model", str(tiny_models["test_reid"]["onnx"]), "--batch", "2", "--seconds", "0",
                 "--json", str(out), "--plot", str(tmp_path / "bench.png")]) == 0
    saved = json.loads(out.read_text())
    assert saved["rows"][0]["batch"] == 2 and "raw_crops_per_s" not in saved["rows"][0]
    assert saved["backend"] == "onnxruntime" and saved["environment"]["versions"]["onnxruntime"]
    assert (tmp_path / "bench.png").stat().st_size > 0


def test_trivial_baselines():
    red = np.zeros((40, 20, 3), np.uint8)
    red[..., 2] = 200
    blue = np.zeros((40, 20, 3), np.uint8)
    blue[..., 0] = 200
    emb = colour_histogram_embedding([red, red.copy(), blue])
    assert emb[0] @ emb[1] == pytest.approx(1.0) and emb[0] @ emb[2] < 0.5
    boxes = np.array([[0, 0, 10, 20], [10, 10, 30, 50]], np.float32)
    keypoints = np.array([[[5, 10, 1]], [[20, 30, 1]]], np.float32)
    pose = mean_pose(keypoints, boxes)
    np.testing.assert_allclose(pose, [[0.5, 0.5]])
    np.testing.assert_allclose(place_mean_pose(pose, boxes), [[[5, 10]], [[20, 30]]])
    batch = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(np.linalg.norm(raw_pixel_embedding(batch), axis=1), 1.0, rtol=1e-5)
