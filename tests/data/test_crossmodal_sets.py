"""Readers and protocols of SYSU-MM01, RegDB, LLCM, PKU-Sketch and the text-to-person sets, on hand-made folders in
the real layouts (``pytest -k sysu_mm01``, ``-k regdb``, ``-k llcm``, ``-k pku_sketch``, ``-k pedes``)."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgereid.data.crossmodal_sets import (read_llcm, read_pku_sketch, read_regdb, read_sysu_mm01, read_text_person,
                                           sysu_gallery, sysu_queries, text_person_test)
from edgereid.errors import InputError
from edgereid.eval.crossmodal_protocols import llcm_metrics, mean_over_trials, ranking_metrics, sysu_metrics

PIXEL = np.full((8, 4, 3), 128, np.uint8)


def _image(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), PIXEL)


@pytest.fixture()
def sysu(tmp_path):
    """Identities 1-2 train, 3 val, 4-6 test; three images per identity and camera (cam3 and cam6 are IR)."""
    for camera in range(1, 7):
        for pid in range(1, 7):
            for k in range(1, 4):
                _image(tmp_path / f"cam{camera}" / f"{pid:04d}" / f"{k:04d}.jpg")
    (tmp_path / "exp").mkdir()
    (tmp_path / "exp" / "train_id.txt").write_text("1,2")
    (tmp_path / "exp" / "val_id.txt").write_text("3")
    (tmp_path / "exp" / "test_id.txt").write_text("4,5,6")
    return tmp_path


def test_sysu_mm01_reader_and_single_shot_galleries(sysu):
    split = read_sysu_mm01(sysu)
    assert len(split.train) == 3 * 6 * 3 and {r.pid for r in split.train} == {1, 2, 3}
    queries = sysu_queries(split)
    assert len(queries) == 3 * 2 * 3 and {r.camid + 1 for r in queries} == {3, 6}
    everything = sysu_gallery(split.gallery, "all", trial=0)
    assert sorted({(r.pid, r.camid + 1) for r in everything}) == [(p, c) for p in (4, 5, 6) for c in (1, 2, 4, 5)]
    assert len(everything) == 12  # one image per identity and camera
    indoor = sysu_gallery(split.gallery, "indoor", trial=0)
    assert {r.camid + 1 for r in indoor} == {1, 2} and len(indoor) == 6
    trials = [[r.path.name for r in sysu_gallery(split.gallery, "all", trial=t)] for t in range(6)]
    assert trials[0] == [r.path.name for r in everything] and len({tuple(t) for t in trials}) > 1
    assert len(sysu_gallery(split.gallery, "all", trial=0, shots=10)) == 36  # multi-shot takes all three
    with pytest.raises(InputError, match="search mode"):
        sysu_gallery(split.gallery, "outdoor")


def test_sysu_mm01_scoring_ignores_camera_2_for_camera_3_and_counts_identities_once():
    gallery = np.eye(4, dtype=np.float32)
    g_pids, g_cams = np.array([7, 8, 8, 7]), np.array([2, 1, 4, 1])
    # nearest first: pid 7 in camera 2 (ignored for a camera-3 query), pid 8 twice, then pid 7 in camera 1
    query = np.array([[1.0, 0.9, 0.8, 0.7]], np.float32)
    from_camera_3 = sysu_metrics(query, gallery, [7], g_pids, [3], g_cams)
    assert from_camera_3["rank1"] == 0 and from_camera_3["rank5"] == 1  # identity 8 then 7: rank 2
    assert from_camera_3["mAP"] == pytest.approx(1 / 3)  # kept list: 8, 8, 7
    from_camera_6 = sysu_metrics(query, gallery, [7], g_pids, [6], g_cams)
    assert from_camera_6["rank1"] == 1 and from_camera_6["mAP"] == pytest.approx((1 + 2 / 4) / 2)
    assert mean_over_trials([from_camera_3, from_camera_6])["rank1"] == 0.5


@pytest.fixture()
def regdb(tmp_path):
    """Two training and two test identities, two images each in both modalities; trial 1's lists."""
    (tmp_path / "idx").mkdir()
    for part, pids in (("train", (1, 2)), ("test", (3, 4))):
        for kind, folder, tag in (("visible", "Visible", "v"), ("thermal", "Thermal", "t")):
            lines = []
            for label, pid in enumerate(pids):
                for k in range(2):
                    relative = f"{folder}/{pid}/female_back_{tag}_{pid:05d}_{k}.bmp"
                    _image(tmp_path / relative)
                    lines.append(f"{relative} {label}")
            (tmp_path / "idx" / f"{part}_{kind}_1.txt").write_text("\n".join(lines) + "\n")
    return tmp_path


def test_regdb_reads_a_trial_in_both_directions(regdb):
    forward = read_regdb(regdb, trial=1, query="visible")
    assert len(forward.train) == 8 and len(forward.query) == 4 and len(forward.gallery) == 4
    assert {r.modality for r in forward.query} == {"rgb"} and {r.modality for r in forward.gallery} == {"ir"}
    assert all(r.path.is_file() for r in forward.query + forward.gallery)
    backward = read_regdb(regdb, trial=1, query="thermal")
    assert [r.path for r in backward.query] == [r.path for r in forward.gallery]
    features = np.array([[1, 0], [1, 0.1], [0, 1], [0.1, 1]], np.float32)
    assert [r.pid for r in forward.query] == [r.pid for r in forward.gallery] == [0, 0, 1, 1]  # the lists' labels
    metrics = ranking_metrics(features, features[[1, 0, 3, 2]], [r.pid for r in forward.query],
                              [r.pid for r in forward.gallery])
    assert metrics["rank1"] == 1.0 and metrics["mAP"] == 1.0


def test_regdb_refuses_bad_lines_paths_outside_and_missing_trials(regdb):
    with pytest.raises(InputError, match="split list not found"):
        read_regdb(regdb, trial=2)
    (regdb / "idx" / "test_visible_1.txt").write_text("Visible/3/x.bmp\n")
    with pytest.raises(InputError, match="is not 'path label'"):
        read_regdb(regdb, trial=1)
    (regdb / "idx" / "test_visible_1.txt").write_text("../../etc/passwd 0\n")
    with pytest.raises(InputError, match="outside the dataset"):
        read_regdb(regdb, trial=1)


@pytest.mark.parametrize("flavour, path_key", [("CUHK-PEDES", "file_path"), ("ICFG-PEDES", "file_path"),
                                               ("RSTPReid", "img_path")])
def test_pedes_caption_files_read_and_score(tmp_path, flavour, path_key):
    entries = [{"id": pid, "split": split, path_key: f"{split}/{pid:04d}_{k}.jpg",
                "captions": [f"person {pid} view {k} a", f"person {pid} view {k} b"]}
               for split, pids in (("train", (1, 2)), ("test", (3, 4))) for pid in pids for k in range(2)]
    if flavour == "CUHK-PEDES":
        for entry in entries:
            entry["processed_tokens"] = [["a"]]
    (tmp_path / "annotations.json").write_text(json.dumps(entries))
    images = read_text_person(tmp_path / "annotations.json")
    assert len(images) == 8 and images[0].path == tmp_path / "imgs" / "train" / "0001_0.jpg"
    queries, gallery = text_person_test(images)
    assert len(queries) == 8 and len(gallery) == 4 and {pid for _, pid in queries} == {3, 4}
    text = np.array([[1.0, 0.0] if pid == 3 else [0.0, 1.0] for _, pid in queries], np.float32)
    pictures = np.array([[1.0, 0.1], [0.9, 0.2], [0.1, 1.0], [0.2, 0.9]], np.float32)
    scores = ranking_metrics(text, pictures, [pid for _, pid in queries], [g.pid for g in gallery], ranks=(1, 5, 10))
    assert scores["rank1"] == scores["rank10"] == 1.0 and scores["mAP"] == 1.0 and scores["queries"] == 8


def test_pedes_reader_refuses_malformed_entries(tmp_path):
    (tmp_path / "bad.json").write_text(json.dumps([{"id": "x", "split": "test", "captions": [], "file_path": "a"}]))
    with pytest.raises(InputError, match="entry 0 is not an annotated image"):
        read_text_person(tmp_path / "bad.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(InputError, match="is not JSON"):
        read_text_person(tmp_path / "bad.json")


def test_llcm_reader_protocol_and_scoring(tmp_path):
    """Identities 1-2 train (through the idx lists), 3-4 test; visible cameras 1-3, near-infrared 1 and 2."""
    (tmp_path / "idx").mkdir()
    for folder, cameras, tag in (("test_vis", (1, 2, 3), "vis"), ("test_nir", (1, 2), "nir")):
        for camera in cameras:
            for pid in (3, 4):
                for k in range(2):
                    _image(tmp_path / folder / f"cam{camera}" / f"{pid:04d}" / f"{pid:04d}_c{camera:02d}_s1_f{k}_{tag}.jpg")
    (tmp_path / "idx" / "test_id.txt").write_text("3,4\n")
    for name, tag in (("train_vis.txt", "vis"), ("train_nir.txt", "nir")):
        lines = []
        for pid in (1, 2):
            relative = f"train_{tag}/cam4/{pid:04d}/{pid:04d}_c04_s1_f0_{tag}.jpg"
            _image(tmp_path / relative)
            lines.append(f"{relative} {pid - 1}")
        (tmp_path / "idx" / name).write_text("\n".join(lines) + "\n")
    split = read_llcm(tmp_path, query="nir", trial=0)
    assert len(split.train) == 4 and {r.camid for r in split.train} == {3}
    assert len(split.query) == 2 * 2 * 2 and {r.modality for r in split.query} == {"ir"}
    assert len(split.gallery) == 2 * 3 and {(r.pid, r.camid) for r in split.gallery} == {(p, c) for p in (3, 4)
                                                                                           for c in (0, 1, 2)}
    assert [r.path for r in read_llcm(tmp_path, "nir", 0).gallery] == [r.path for r in split.gallery]
    gallery = np.eye(3, dtype=np.float32)
    # the nearest image is the query's identity in the query's own camera (ignored), then identity 4, then 3
    scores = llcm_metrics(np.array([[1.0, 0.9, 0.8]], np.float32), gallery, [3], [3, 4, 3], [1], [1, 2, 2])
    assert scores["rank1"] == 0 and scores["rank5"] == 1 and scores["mAP"] == pytest.approx(0.5)


def test_pku_sketch_reader_holds_out_identities_per_style(tmp_path):
    (tmp_path / "styleAnnotation").mkdir()
    for style, ids in (("a", range(1, 17)), ("b", range(17, 21))):
        (tmp_path / "styleAnnotation" / f"{style}_{len(ids)}.txt").write_text("\n".join(map(str, ids)) + "\n")
        for pid in ids:
            _image(tmp_path / "sketch" / f"{pid}.jpg")
            for camera in (1, 2):
                _image(tmp_path / "photo" / f"{pid}_{camera:02d}_{100 + pid}.jpg")
    split = read_pku_sketch(tmp_path, trial=0)
    held_out = {r.pid for r in split.query}
    assert len(held_out) == 15 and len(held_out & set(range(17, 21))) == 4  # 11 of a's 16, b's 4 (5 asked)
    assert {r.modality for r in split.query} == {"sketch"} and len(split.gallery) == 2 * len(held_out)
    assert not held_out & {r.pid for r in split.train}
    (tmp_path / "photo" / "junk.jpg").write_bytes(b"")
    with pytest.raises(InputError, match="not named like a PKU-Sketch photo"):
        read_pku_sketch(tmp_path)
