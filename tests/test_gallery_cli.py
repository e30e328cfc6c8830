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
