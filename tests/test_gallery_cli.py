"""``edgereid gallery``: enroll a crop folder, list, info, search, remove, all through the command line."""

import json

import cv2
import numpy as np
import pytest

from edgereid.cli import main
from edgereid.data.synthetic import World, WorldConfig

FACE = "samples/models/face/model.onnx"


@pytest.fixture
def crops(tmp_path):
    """Four identities, three rendered face photos each, one folder per identity; a fourth photo to search."""
    world = World(WorldConfig(seed=5, num_identities=4))
    rng = np.random.default_rng(0)
    root = tmp_path / "crops"
    probes = {}
    for identity in world.identities:
        folder = root / f"person{identity.pid}"
        folder.mkdir(parents=True)
        for i in range(4):
            image = world.render_face(identity.pid, rng).image
            path = folder / f"{i}.png" if i < 3 else tmp_path / f"probe{identity.pid}.png"
            cv2.imwrite(str(path), image)
        probes[f"person{identity.pid}"] = str(tmp_path / f"probe{identity.pid}.png")
    return root, probes


def test_enroll_list_info_search_remove(crops, tmp_path, capsys):
    root, probes = crops
    gallery = str(tmp_path / "faces.npz")
    assert main(["gallery", "enroll", str(root), "--model", FACE, "--gallery", gallery]) == 0
    assert main(["gallery", "list", "--gallery", gallery, "--json", str(tmp_path / "list.json")]) == 0
    assert json.loads((tmp_path / "list.json").read_text()) == {name: 3 for name in sorted(probes)}
    assert main(["gallery", "search", *probes.values(), "--model", FACE, "--gallery", gallery, "-k", "2",
                 "--json", str(tmp_path / "search.json")]) == 0
    found = json.loads((tmp_path / "search.json").read_text())
    top1 = sum(found[path][0]["identity"] == name for name, path in probes.items())
    assert top1 >= 3 and all(len(matches) == 2 for matches in found.values())
    name = sorted(probes)[0]
    assert main(["gallery", "remove", name, "--gallery", gallery]) == 0
    assert main(["gallery", "info", "--gallery", gallery, "--json", str(tmp_path / "info.json")]) == 0
    info = json.loads((tmp_path / "info.json").read_text())
    assert (info["identities"], info["vectors"], info["task"]) == (3, 9, "face")
    capsys.readouterr()
    assert main(["gallery", "remove", "nobody", "--gallery", gallery]) == 2
    assert main(["gallery", "enroll", str(root), "--model", "samples/models/reid/model.onnx", "--gallery", gallery]) == 2
    assert "cannot be compared" in capsys.readouterr().err


def test_calibrate_on_a_labelled_face_folder_writes_a_new_file_and_plots(crops, tmp_path):
    root, _ = crops
    out = tmp_path / "face_calibrated.onnx"
    assert main(["calibrate", "--model", FACE, "--data", str(root), "--far", "0.1", "--out", str(out),
                 "--plot", str(tmp_path / "scores.png"), "--json", str(tmp_path / "c.json")]) == 0
    report = json.loads((tmp_path / "c.json").read_text())
    from edgereid.card import read_card

    # 4 identities x 3 pictures: 4 * 3 genuine pairs (every two pictures of one face), the rest impostors
    assert read_card(out).accept_threshold.score == report["threshold"] and report["genuine_pairs"] == 4 * 3
    assert (tmp_path / "scores.png").stat().st_size > 10_000
    assert report["impostor_pairs"] == (12 * 11) // 2 - 12


def test_calibrate_on_a_market1501_folder(tmp_path):
    world = World(WorldConfig(seed=9, num_identities=8, num_cameras=3))
    root = world.write_market1501(tmp_path / "market", images_per_id_per_cam=2, train_fraction=0.25)
    assert main(["calibrate", "--model", "samples/models/reid/model.onnx", "--data", str(root), "--far", "0.2",
                 "--dry-run", "--json", str(tmp_path / "c.json")]) == 0
    report = json.loads((tmp_path / "c.json").read_text())
    assert report["written"] is None and report["genuine_pairs"] > 0 and "market" in report["data"]


def test_the_stored_threshold_keeps_the_false_accept_rate(crops):
    from edgereid.eval.calibrate import calibrate

    root, _ = crops
    result = calibrate(FACE, far=0.1, folder=root)
    assert (result.impostor > result.threshold.score).mean() <= 0.1
