"""ReID training crops from dataset folders: one folder, or several (multi-source) numbered apart."""

from __future__ import annotations

import numpy as np
import pytest

from edgereid.card import InputSpec
from edgereid.data.datasets import read_market1501
from edgereid.data.synthetic import WorldSpec
from edgereid.data.synthetic import World, WorldConfig
from edgereid.errors import ConfigError
from edgereid.methods.reid_data import dataset_folders, reid_training_crops

SPEC = InputSpec(height=32, width=16)


def test_several_folders_keep_identities_and_cameras_apart(tmp_path):
    folders = []
    for seed in (5, 6):
        folders.append(str(World(WorldConfig(seed=seed, num_identities=4, num_cameras=2)).write_market1501(
            tmp_path / f"world{seed}", images_per_id_per_cam=1)))
    one = [reid_training_crops(WorldSpec(), folder, SPEC, ()) for folder in folders]
    both = reid_training_crops(WorldSpec(), folders, SPEC, ())
    assert len(both) == sum(len(c) for c in one) == sum(len(read_market1501(f).train) for f in folders)
    first, second = both.pids[:len(one[0])], both.pids[len(one[0]):]
    assert (first == one[0].pids).all() and second.min() > first.max()  # nobody merged across datasets
    assert both.cams[len(one[0]):].min() > both.cams[:len(one[0])].max()
    np.testing.assert_array_equal(both.images[len(one[0]):], one[1].images)
    second_cameras = tuple(int(c) for c in np.unique(both.cams[len(one[0]):]))
    assert len(reid_training_crops(WorldSpec(), folders, SPEC, second_cameras)) == len(one[1])


def test_dataset_values():
    assert dataset_folders("") == () and dataset_folders("a") == ("a",) and dataset_folders(["a", "b"]) == ("a", "b")
    for bad in ([], ["a", ""], 3):
        with pytest.raises(ConfigError, match="folder or a non-empty list"):
            dataset_folders(bad)


def test_evaluate_reid_on_a_target_dataset_folder(tmp_path, tiny_models):
    import json

    from edgereid.cli import main

    root = World(WorldConfig(seed=7, num_identities=6, num_cameras=2)).write_market1501(tmp_path / "target")
    report = tmp_path / "target.json"
    assert main(["evaluate", "reid", "--dataset", str(root), "--model", f"tiny={tiny_models['test_reid']['onnx']}",
                 "--out", str(report)]) == 0
    row = json.loads(report.read_text())["results"]["tiny"]
    split = read_market1501(root)
    assert (row["queries"], row["gallery"]) == (len(split.query), len(split.gallery))
    assert 0 <= row["mAP"] <= 1 and 0 <= row["rank1"] <= row["rank5"] <= 1
    valid = sum(any(g.pid == q.pid and g.camid != q.camid for g in split.gallery) for q in split.query)
    assert row["valid_queries"] == valid
