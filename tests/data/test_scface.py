"""SCface's released layout (mugshots, surveillance_cameras_distance_D/cam_C) and its identification protocol."""

import shutil

import cv2
import numpy as np
import pytest

from edgereid.data.scface import (SCFACE_TEST_SUBJECTS, SCFACE_TUNE_SUBJECTS, read_scface, scface_by_distance,
                                  scface_identification)
from edgereid.errors import InputError

SUBJECTS = (49, 50, 51, 52)


def _image(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.full((12, 10, 3), 120, np.uint8))


@pytest.fixture()
def scface(tmp_path):
    root = tmp_path / "SCface_database"
    for subject in SUBJECTS:
        _image(root / "mugshot_frontal_cropped_all" / f"{subject:03d}_frontal.JPG")
        for distance in (1, 2, 3):
            for camera in range(1, 6):
                _image(root / f"surveillance_cameras_distance_{distance}" / f"cam_{camera}"
                       / f"{subject:03d}_cam{camera}_{distance}.jpg")
        _image(root / "surveillance_cameras_distance_1" / "cam_6" / f"{subject:03d}_cam6_1.jpg")
    (root / "mugshot_frontal_cropped_all" / "Thumbs.db").write_bytes(b"\0")  # not an image: skipped
    (root / "surveillance_cameras_distance_2" / "cam_3" / "notes.txt").write_text("x")
    _image(root / "mugshot_frontal_cropped_all" / "._049_frontal.JPG")  # hidden macOS copy: skipped
    return root


def test_scface_reader_parses_subjects_cameras_and_distances(scface):
    test = read_scface(scface)
    assert test.gallery_ids.tolist() == list(SUBJECTS)
    assert [p.name for p in test.gallery] == ["049_frontal.JPG", "050_frontal.JPG", "051_frontal.JPG",
                                              "052_frontal.JPG"]
    assert sorted(test.probes) == [1, 2, 3]
    for distance in (1, 2, 3):
        assert test.probe_ids[distance].tolist() == [s for s in SUBJECTS for _ in range(5)]
        assert test.probe_cameras[distance].tolist() == [1, 2, 3, 4, 5] * 4
        assert all(p.name == f"{s:03d}_cam{c}_{distance}.jpg" and p.parent.name == f"cam_{c}" and p.is_file()
                   for p, s, c in zip(test.probes[distance], test.probe_ids[distance],
                                      test.probe_cameras[distance]))
    assert read_scface(scface.parent).probes == test.probes  # the folder holding SCface_database works too
    infrared = read_scface(scface, distances=(1,), cameras=(6,))
    assert sorted(infrared.probes) == [1] and infrared.probe_cameras[1].tolist() == [6] * 4
    assert infrared.probe_ids[1].tolist() == list(SUBJECTS)


def test_scface_subject_split_keeps_only_the_test_subjects(scface):
    assert SCFACE_TEST_SUBJECTS == tuple(range(51, 131)) and SCFACE_TUNE_SUBJECTS == tuple(range(1, 51))
    test = read_scface(scface, distances=(3,), subjects=[51, 52])
    assert test.gallery_ids.tolist() == [51, 52] and sorted(test.probes) == [3]
    assert test.probe_ids[3].tolist() == [51] * 5 + [52] * 5
    with pytest.raises(InputError, match="no mugshot") as caught:  # a partial copy is not the 80-subject test set
        read_scface(scface, subjects=SCFACE_TEST_SUBJECTS)
    assert "053" in str(caught.value)


def test_scface_missing_folders_raise_with_the_expected_layout(scface):
    shutil.rmtree(scface / "surveillance_cameras_distance_3")
    with pytest.raises(InputError, match="surveillance_cameras_distance_3") as caught:
        read_scface(scface)
    assert caught.value.fix and "SCface_database" in caught.value.fix
    assert "cam_C/NNN_camC_D.jpg" in caught.value.expected
    assert sorted(read_scface(scface, distances=(1, 2)).probes) == [1, 2]
    with pytest.raises(InputError, match="cam_7"):
        read_scface(scface, distances=(1,), cameras=(7,))
    shutil.rmtree(scface / "mugshot_frontal_cropped_all")
    with pytest.raises(InputError, match="mugshot_frontal_cropped_all"):
        read_scface(scface, distances=(1,))
    with pytest.raises(InputError, match="distances"):
        read_scface(scface, distances=(4,))


@pytest.mark.parametrize("folder, name, message", [
    ("surveillance_cameras_distance_1/cam_1", "049_cam1.jpg", "049_cam1.jpg"),
    ("surveillance_cameras_distance_2/cam_4", "49_cam4_2.png", "49_cam4_2.png"),
    ("surveillance_cameras_distance_1/cam_1", "050_cam2_1.jpg", "camera 2 at distance 1"),
    ("surveillance_cameras_distance_3/cam_5", "051_cam5_1.jpg", "camera 5 at distance 1"),
    ("surveillance_cameras_distance_1/cam_2", "051_cam2_1.JPG", "two images of subject 051"),
    ("mugshot_frontal_cropped_all", "050_front.JPG", "050_front.JPG"),
    ("mugshot_frontal_cropped_all", "052_frontal.png", "two mugshots"),
])
def test_scface_malformed_or_misplaced_image_raises(scface, folder, name, message):
    if "two images" in message:
        (scface / folder / "051_cam2_1.jpg").unlink()
        _image(scface / folder / "051_cam2_1.jpeg")
    _image(scface / folder / name)
    with pytest.raises(InputError, match=message):
        read_scface(scface)


def test_scface_rank1_and_rank5_match_hand_computed_ranks():
    gallery = np.eye(6, dtype=np.float32)  # subject k+1 is the k-th axis
    gallery_ids = np.arange(1, 7)
    probes = np.array([[1, 0.1, 0, 0, 0, 0],            # subject 1: own mugshot first
                       [0.9, 0.5, 0.1, 0, 0, 0],        # subject 2: second, behind subject 1
                       [0.2, 0.3, 0.1, 0.4, 0, 0],      # subject 3: fourth (4, 2, 1 come first)
                       [0.6, 0.5, 0.4, 0.3, 0.2, 0.1]],  # subject 6: last of six, outside rank 5
                      np.float32)
    scores = scface_identification(gallery, gallery_ids, probes, [1, 2, 3, 6], ranks=(1, 2, 5))
    assert scores == {"rank1": 0.25, "rank2": 0.5, "rank5": 0.75, "probes": 4, "gallery": 6}
    assert scface_identification(gallery, gallery_ids, probes[:1], [2])["rank1"] == 0.0
    with pytest.raises(InputError, match="missing"):
        scface_identification(gallery, gallery_ids, probes, [1, 2, 3, 7])
    with pytest.raises(InputError, match="dimension"):
        scface_identification(gallery, gallery_ids, probes[:, :5], [1, 2, 3, 6])
    with pytest.raises(InputError, match="number"):
        scface_identification(gallery, gallery_ids[:5], probes, [1, 2, 3, 6])


def test_scface_by_distance_reports_each_distance(scface):
    test = read_scface(scface, distances=(1, 3), subjects=(51, 52))
    gallery = np.array([[1, 0], [0, 1]], np.float32)
    right = np.array([[1, 0]] * 5 + [[0, 1]] * 5, np.float32)
    one_wrong = right.copy()
    one_wrong[9] = [1, 0.2]  # subject 52, camera 5 looks like subject 51
    table = scface_by_distance(test, gallery, {1: one_wrong, 3: right})
    assert table["d1"]["rank1"] == pytest.approx(0.9) and table["d1"]["rank5"] == 1.0
    assert table["d3"]["rank1"] == 1.0 and table["d3"]["probes"] == 10 and sorted(table) == ["d1", "d3"]
    with pytest.raises(InputError, match="distance 3"):
        scface_by_distance(test, gallery, {1: right, 3: right[:9]})
