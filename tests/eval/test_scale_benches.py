"""The gallery-scale and gateway benchmarks: their generators, rules and output contracts, at tiny sizes (the
speed numbers themselves live in BENCHMARKS.md)."""

import json

import numpy as np
import pytest

from edgereid.cli import main
from edgereid.eval.gallery_bench import identity_clusters
from edgereid.eval.gateway_bench import _schedule, most_cameras


def test_identity_clusters_have_the_promised_geometry():
    enrolled, queries, truth = identity_clusters(3000, 128, queries=32, seed=4)
    assert enrolled.shape == (3000, 128) and queries.shape == (32, 128) and len(set(truth)) == 32
    np.testing.assert_allclose(np.linalg.norm(enrolled, axis=1), 1.0, rtol=1e-5)
    own = (queries * enrolled[truth]).sum(1)  # two independent views at ~0.75 to the centre: ~0.56
    strangers = queries @ enrolled[(truth + 1) % 3000].T
    assert 0.45 < own.mean() < 0.67 and abs(np.diag(strangers).mean()) < 0.05
    assert ((queries @ enrolled.T).argmax(1) == truth).all()


def test_gallery_bench_cli_rows(tmp_path):
    pytest.importorskip("faiss")
    out = tmp_path / "gallery.json"
    assert main(["bench", "--gallery-sizes", "500,2000", "--gallery-dim", "64", "--gallery-searches",
                 "numpy-exact,faiss-flat,faiss-pq-fastscan", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [(r["size"], r["index"]) for r in rows] == [(s, i) for s in (500, 2000)
                                                       for i in ("numpy-exact", "faiss-flat", "faiss-pq-fastscan")]
    assert all(r["recall_at_1"] == 1.0 for r in rows if r["index"] != "faiss-pq-fastscan")
    assert all(r["search_ms"] > 0 for r in rows)


def test_the_camera_schedule_and_the_capacity_search():
    schedule = _schedule(4, 3)
    assert len(schedule) == 12 and [t for t, _, _ in schedule] == sorted(t for t, _, _ in schedule)
    assert [round(t, 3) for t, c, k in schedule if k == 0] == [0.0, 0.025, 0.05, 0.075]

    def trial(capacity):
        def run(cameras):  # a path whose p99 passes the budget up to `capacity` cameras
            frames = cameras * 40
            return np.full(frames, 100.0 if cameras <= capacity else 900.0), frames * 10
        return run

    assert most_cameras(trial(13), 4.0, lambda _: None)[0] == 13
    assert most_cameras(trial(0), 4.0, lambda _: None)[0] == 0


def test_gateway_bench_runs_every_path(tmp_path):
    """A tiny run (1 s trials) of all five paths on the bundled models: rows in order, each with its count."""
    from edgereid.bundled import bundled_model
    from edgereid.eval.gateway_bench import bench_gateway

    rows = bench_gateway(str(bundled_model("reid")), str(bundled_model("face")), paths="ace", seconds=1.0)
    assert [r.path for r in rows] == ["a", "c", "e"][:len(rows)] and rows[0].cameras_per_core >= 1
