import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
SPEC = importlib.util.spec_from_file_location("camera_gateway", ROOT / "samples" / "camera_gateway.py")
gateway = importlib.util.module_from_spec(SPEC)
sys.modules["camera_gateway"] = gateway  # dataclasses look their module up
SPEC.loader.exec_module(gateway)


def test_tracker_follows_boxes_and_debounces_identities():
    tracker = gateway.IouTracker(min_iou=0.3, max_missed=1)
    emb = np.eye(2, dtype=np.float32)
    first = tracker.update(np.array([[0, 0, 10, 20], [50, 0, 60, 20]], np.float32), emb)
    second = tracker.update(np.array([[51, 1, 61, 21], [1, 0, 11, 20]], np.float32), emb[::-1])
    assert [t.track_id for t in first] == [1, 2] and [t.track_id for t in second] == [2, 1]
    np.testing.assert_allclose(second[1].embedding, emb[0])
    track = second[0]
    assert [gateway.debounced_event(track, "bob", 2) for _ in range(3)] == [False, True, False]
    assert gateway.debounced_event(track, None, 1)  # a change to unknown is an event too
    tracker.update(np.zeros((0, 4), np.float32), np.zeros((0, 2), np.float32))
    tracker.update(np.zeros((0, 4), np.float32), np.zeros((0, 2), np.float32))
    assert not tracker.tracks and len(tracker.finished) == 2


def test_bytetrack_keeps_ids_through_reordered_boxes():
    pytest.importorskip("trackers", reason="the trackers package (ByteTrack) is not installed; the IoU tracker runs")
    tracker = gateway.ByteTracker(fps=10.0)
    emb = np.eye(2, dtype=np.float32)
    boxes = np.array([[0, 0, 40, 80], [100, 0, 140, 80]], np.float32)
    steps = [tracker.update(boxes + 2 * i, emb) for i in range(4)]
    ids = [[None if t is None else t.track_id for t in step] for step in steps]
    assert None not in ids[-1] and ids[-1][0] != ids[-1][1]
    swapped = tracker.update((boxes + 8)[::-1], emb[::-1])
    assert [t.track_id for t in swapped] == ids[-1][::-1]  # row order follows the boxes, not ByteTrack's order
    np.testing.assert_allclose(swapped[1].embedding, emb[0])
    assert gateway.make_tracker("iou", 10.0).__class__ is gateway.IouTracker


@pytest.mark.parametrize("tracker", ["iou", "bytetrack"])
def test_gateway_enrolls_then_reports_identity_events(tiny_models, tmp_path, tracker):
    if tracker == "bytetrack":
        pytest.importorskip("trackers", reason="the trackers package (ByteTrack) is not installed")
    from edgereid.data.synthetic import World, WorldConfig
    from edgereid.data.video import write_scene_videos

    videos = write_scene_videos(World(WorldConfig(seed=3, num_identities=6, num_cameras=2)), tmp_path, frames=15)
    reid, kp = str(tiny_models["test_reid"]["onnx"]), str(tiny_models["test_keypoints"]["onnx"])
    common = [sys.executable, str(ROOT / "samples" / "camera_gateway.py"), "--reid", reid, "--keypoints", kp,
              "--min-hits", "2", "--tracker", tracker]
    enroll = subprocess.run(common + ["--video", str(videos[0]), "--enroll-gallery", str(tmp_path / "g.npz")],
                            capture_output=True, text=True, timeout=300)
    assert enroll.returncode == 0, enroll.stderr
    run = subprocess.run(common + ["--video", str(videos[1]), "--camera", "1", "--gallery", str(tmp_path / "g.npz")],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    events = [json.loads(line) for line in run.stdout.splitlines()]
    assert events and {"camera", "time", "track", "box", "identity", "score", "keypoints"} <= set(events[0])
    assert all(e["identity"] == "unknown" or e["identity"].startswith("cam0-track") for e in events)
