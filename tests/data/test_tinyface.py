"""TinyFace's released test layout (MATLAB identity lists written with scipy) and its identification protocol."""

import cv2
import numpy as np
import pytest

scipy_io = pytest.importorskip("scipy.io")

from edgereid.data.tinyface import read_tinyface, tinyface_metrics  # noqa: E402
from edgereid.errors import InputError  # noqa: E402


@pytest.fixture()
def tinyface(tmp_path):
    test = tmp_path / "tinyface" / "Testing_Set"
    for folder, names in (("Probe", ["1_1.jpg", "2_1.jpg"]), ("Gallery_Match", ["1_2.jpg", "1_3.jpg", "2_2.jpg"]),
                          ("Gallery_Distractor", ["d1.jpg", "d2.jpg"])):
        (test / folder).mkdir(parents=True)
        for name in names:
            cv2.imwrite(str(test / folder / name), np.full((20, 16, 3), 90, np.uint8))
    scipy_io.savemat(test / "probe_img_ID_pairs.mat", {"probe_set": np.array(["1_1.jpg", "2_1.jpg"], dtype=object),
                                                       "probe_ids": np.array([[1], [2]], np.uint16)})
    scipy_io.savemat(test / "gallery_match_img_ID_pairs.mat",
                     {"gallery_set": np.array(["1_2.jpg", "1_3.jpg", "2_2.jpg"], dtype=object),
                      "gallery_ids": np.array([[1], [1], [2]], np.uint16)})
    return tmp_path / "tinyface"


def test_tinyface_reader_follows_the_released_layout(tinyface):
    test = read_tinyface(tinyface)
    assert [p.name for p in test.probes] == ["1_1.jpg", "2_1.jpg"] and test.probe_ids.tolist() == [1, 2]
    assert test.gallery_ids.tolist() == [1, 1, 2] and all(p.is_file() for p in test.gallery + test.probes)
    assert [p.name for p in test.distractors] == ["d1.jpg", "d2.jpg"]
    assert read_tinyface(tinyface / "Testing_Set").probes == test.probes
    (tinyface / "Testing_Set" / "probe_img_ID_pairs.mat").unlink()
    with pytest.raises(InputError, match="missing"):
        read_tinyface(tinyface)


def test_tinyface_ranks_probes_against_gallery_and_distractors():
    gallery = np.array([[1, 0, 0], [0.9, 0.1, 0], [0, 1, 0]], np.float32)
    distractors = np.array([[0.95, 0.05, 0.2], [0, 0, 1]], np.float32)
    probes = np.array([[1, 0, 0.1], [0, 0.2, 1]], np.float32)
    scores = tinyface_metrics(probes, [1, 2], gallery, [1, 1, 2], distractors)
    # probe 1: its two gallery images rank 1st and 3rd around a distractor; probe 2: both distractors come first
    assert scores["rank1"] == 0.5 and scores["rank5"] == 1.0 and scores["gallery"] == 5
    # trapezoid APs: probe 1 0.5 + 0.5 * (1/2 + 2/3) / 2, probe 2 1 * (0 + 1/3) / 2
    assert scores["mAP"] == pytest.approx(((0.5 + 0.5 * (0.5 + 2 / 3) / 2) + (1 / 3) / 2) / 2)
    alone = tinyface_metrics(probes[:1], [1], gallery, [1, 1, 2])  # without distractors: both matches first
    assert alone["rank1"] == 1.0 and alone["mAP"] == pytest.approx(1.0)
