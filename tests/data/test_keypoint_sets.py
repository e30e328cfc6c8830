"""StableKeypoints' four keypoint benchmarks in their released layouts (CelebA/MAFL, DeepFashion, Tai-Chi,
Human3.6M), on hand-made folders, and the official metrics against hand-computed numbers."""

import json

import cv2
import numpy as np
import pytest

from edgereid.data.keypoint_sets import read_celeba_mafl, read_deepfashion
from edgereid.data.keypoint_video_sets import read_human36m, read_taichi
from edgereid.errors import InputError
from edgereid.eval.keypoint_metrics import (H36M_SWAP_PAIRS, inter_ocular_nme, orientation_invariant_error, pck,
                                            summed_keypoint_error, swap_permutation)

CELEBA_HEADER = "lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y rightmouth_x " \
                "rightmouth_y"


def _image(path, width, height):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((height, width, 3), 120, np.uint8))


# --- CelebA / MAFL ---------------------------------------------------------------------------------------------


@pytest.fixture()
def celeba(tmp_path):
    root = tmp_path / "celeba"
    rows = ["000001.jpg    69  109  106  113   77  142   73  152  108  154",
            "000002.jpg    69  110  107  112   81  135   70  151  108  153",
            "000003.jpg    76  112  104  106  108  128   74  156   98  158"]
    (root / "Anno").mkdir(parents=True)
    (root / "Anno" / "list_landmarks_align_celeba.txt").write_text("3\n" + CELEBA_HEADER + " \n" + "\n".join(rows))
    (root / "MAFL").mkdir()
    (root / "MAFL" / "training.txt").write_text("000001.jpg\n000003.jpg\n")
    (root / "MAFL" / "testing.txt").write_text("000002.jpg\n")
    for stem in ("000001", "000002", "000003"):
        _image(root / "img_align_celeba" / f"{stem}.jpg", 178, 218)
    return root


def test_celeba_mafl_reader_parses_landmarks_and_splits(celeba):
    train = read_celeba_mafl(celeba, "train")
    assert [p.name for p in train.images] == ["000001.jpg", "000003.jpg"]
    assert train.keypoints.shape == (2, 5, 2) and train.visible.all()
    assert train.keypoints[0].tolist() == [[69, 109], [106, 113], [77, 142], [73, 152], [108, 154]]
    assert train.keypoints[1, 4].tolist() == [98, 158] and train.sizes[0].tolist() == [178, 218]
    test = read_celeba_mafl(celeba, "test")
    assert [p.name for p in test.images] == ["000002.jpg"] and test.keypoints[0, 1].tolist() == [107, 112]


def test_celeba_reads_the_official_png_copies_when_present(celeba):
    for stem in ("000001", "000002", "000003"):
        _image(celeba / "Img" / "img_align_celeba_png" / f"{stem}.png", 178, 218)
    assert read_celeba_mafl(celeba, "test").images[0].name == "000002.png"


@pytest.mark.parametrize("edit, message", [
    (lambda text: text.replace("lefteye_x", "left_eye_x"), "header"),
    (lambda text: text.replace("3\n", "4\n", 1), "announces 4 images"),
    (lambda text: text.replace(" 142 ", " 14x "), "not a number"),
    (lambda text: text.replace("  154", ""), "10 coordinates"),
])
def test_celeba_malformed_landmark_list_is_an_input_error(celeba, edit, message):
    path = celeba / "Anno" / "list_landmarks_align_celeba.txt"
    path.write_text(edit(path.read_text()))
    with pytest.raises(InputError, match=message):
        read_celeba_mafl(celeba, "train")


def test_celeba_split_naming_an_unknown_image_is_an_input_error(celeba):
    (celeba / "MAFL" / "testing.txt").write_text("000009.jpg\n")
    with pytest.raises(InputError, match="line 1 names an image the landmark list lacks"):
        read_celeba_mafl(celeba, "test")
    with pytest.raises(InputError, match="unknown MAFL split"):
        read_celeba_mafl(celeba, "val")


def test_celeba_inter_ocular_nme_matches_hand_computation():
    gt = np.zeros((2, 5, 2))
    gt[:, 0], gt[:, 1] = (30, 40), (70, 40)  # eyes 40 px apart
    gt[:, 2:] = [[50, 60], [35, 80], [65, 80]]
    shifted = gt + [4, 0]  # every landmark 4 px off: 4 / 40 = 0.1 on image 0 ...
    pred = np.stack([shifted[0], gt[1]])  # ... and exact on image 1
    assert inter_ocular_nme(pred, gt) == pytest.approx(0.05)
    # the official normalisation by (width, height) weights x and y differently on a 100 x 200 image:
    down = gt + [0, 4]
    assert inter_ocular_nme(down, gt) == pytest.approx(0.1)
    assert inter_ocular_nme(down, gt, image_size=(100, 200)) == pytest.approx((4 / 200) / (40 / 100))
    gt[1, 1] = gt[1, 0]
    with pytest.raises(InputError, match="eye landmarks coincide"):
        inter_ocular_nme(pred, gt)


# --- DeepFashion -----------------------------------------------------------------------------------------------


@pytest.fixture()
def deepfashion(tmp_path):
    root = tmp_path / "deepfashion"
    names = ["MEN/Denim/id_00000080/01_1_front.jpg", "WOMEN/Dresses/id_00000002/02_4_full.jpg"]
    (root).mkdir()
    (root / "data_test.csv").write_text(",filename\n0," + names[0] + "\n1," + names[1] + "\n")
    points = [[[100.0, 40.0], [120.5, 60.0], [-1.0, -1.0]], [[90.0, 30.0], [110.0, 70.0], [128.0, 200.0]]]
    (root / "data_test.json").write_text(json.dumps([{"keypoints": p} for p in points]))
    for name in names:
        _image(root / "img" / name, 256, 256)
    return root


def test_deepfashion_reader_follows_csv_and_json(deepfashion):
    data = read_deepfashion(deepfashion, "test")
    assert [p.name for p in data.images] == ["01_1_front.jpg", "02_4_full.jpg"]
    assert data.keypoints.shape == (2, 3, 2) and data.keypoints[0, 1].tolist() == [120.5, 60.0]
    assert data.visible.tolist() == [[True, True, False], [True, True, True]]
    assert data.sizes.tolist() == [[256, 256], [256, 256]]


def test_deepfashion_malformed_files_are_input_errors(deepfashion):
    (deepfashion / "data_test.json").write_text(json.dumps([{"keypoints": [[1, 2]]}]))
    with pytest.raises(InputError, match="do not describe the same images"):
        read_deepfashion(deepfashion, "test")
    (deepfashion / "data_test.json").write_text(json.dumps([{"keypoints": [[1, 2, 1]]}, {"keypoints": [[1, 2]]}]))
    with pytest.raises(InputError, match=r"not a list of \(x, y\) points"):
        read_deepfashion(deepfashion, "test")
    (deepfashion / "data_test.csv").write_text(",filename\n0,../../etc/passwd\n")
    with pytest.raises(InputError, match="outside img/"):
        read_deepfashion(deepfashion, "test")


def test_deepfashion_pck_at_6_pixels_is_strict():
    gt = np.full((1, 4, 2), 100.0)
    pred = gt + np.array([[[3, 4], [0, 7], [6, 0], [0, 0]]])  # 5 px in, 7 px out, exactly 6 out (strict <)
    assert pck(pred, gt, 6) == pytest.approx(2 / 4)
    assert pck(pred, gt, 6, visible=np.array([[True, True, False, False]])) == pytest.approx(1 / 2)
    assert pck(pred, gt, 7.5) == 1.0
    with pytest.raises(InputError, match="no visible point"):
        pck(pred, gt, 6, visible=np.zeros((1, 4), bool))


# --- Tai-Chi ---------------------------------------------------------------------------------------------------


@pytest.fixture()
def taichi(tmp_path):
    root = tmp_path / "taichi"
    frames = ["aD_ghsW8j1E#000400#000480.mp4/0000010.png", "bx0c3_BfYDg#001#002.mp4/0000000.png"]
    values = [[[10.0 + j, 20.0 + 2 * j] for j in range(18)], [[-1.0, -1.0]] + [[30.0, 40.0]] * 17]
    (root / "landmark").mkdir(parents=True)
    (root / "landmark" / "taichi_test_gt.json").write_text(
        json.dumps([{"file_name": f, "value": v} for f, v in zip(frames, values)]))
    for frame in frames:
        _image(root / "eval_images" / "taichi-256" / "test" / frame, 256, 256)
    return root


def test_taichi_reader_reads_the_records_and_marks_missing_joints(taichi):
    data = read_taichi(taichi, "test")
    assert data.images[0].parent.name == "aD_ghsW8j1E#000400#000480.mp4"
    assert data.keypoints.shape == (2, 18, 2) and data.keypoints[0, 3].tolist() == [13.0, 26.0]
    assert data.visible[0].all() and data.visible[1].tolist() == [False] + [True] * 17


def test_taichi_pickle_is_refused_with_the_conversion_to_run(taichi):
    table = taichi / "landmark" / "taichi_test_gt.json"
    table.rename(table.with_suffix(".pkl"))
    with pytest.raises(InputError, match="never loaded") as caught:
        read_taichi(taichi, "test")
    assert "to_json" in str(caught.value) and "orient='records'" in str(caught.value)


def test_taichi_malformed_records_are_input_errors(taichi):
    table = taichi / "landmark" / "taichi_test_gt.json"
    table.write_text(json.dumps([{"file_name": "x.png", "value": [[1, 2]] * 17}]))
    with pytest.raises(InputError, match=r"\[18, 2\]"):
        read_taichi(taichi, "test")
    table.write_text(json.dumps({"file_name": ["x.png"]}))
    with pytest.raises(InputError, match="is not a list"):
        read_taichi(taichi, "test")
    table.write_text(json.dumps([{"file_name": "../../x.png", "value": [[1, 2]] * 18}]))
    with pytest.raises(InputError, match="outside"):
        read_taichi(taichi, "test")


def test_taichi_error_sums_visible_joints_per_image():
    gt = np.full((2, 3, 2), 50.0)
    pred = gt.copy()
    pred[0] += [3, 4]  # 5 px on each of image 0's joints
    visible = np.array([[True, True, False], [True, True, True]])
    assert summed_keypoint_error(pred, gt, visible) == pytest.approx((5 + 5 + 0) / 2)
    assert summed_keypoint_error(pred, gt) == pytest.approx(15 / 2)


# --- Human3.6M -------------------------------------------------------------------------------------------------


@pytest.fixture()
def human36m(tmp_path):
    scipy_io = pytest.importorskip("scipy.io")
    root = tmp_path / "human36m"
    rng = np.random.default_rng(0)
    for subject, folders in ((11, ["Directions.54138969", "Walking 1.55011271", "Eating.54138969"]), (1, ["Posing"])):
        for folder in folders:
            for frame in ("000001", "000002"):
                _image(root / f"S{subject}" / "WithBackground" / folder / f"{frame}.jpg", 128, 128)
                (root / f"S{subject}" / "BackgroudMask" / folder).mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(root / f"S{subject}" / "BackgroudMask" / folder / f"{frame}.png"),
                            np.ones((128, 128), np.uint8))
                (root / f"S{subject}" / "Landmarks" / folder).mkdir(parents=True, exist_ok=True)
                scipy_io.savemat(root / f"S{subject}" / "Landmarks" / folder / f"{frame}.mat",
                                 {"keypoints_2d": rng.uniform(0.1, 0.9, (32, 2)).astype(np.float32)})
    return root


def test_human36m_reader_lists_action_folders_and_scales_joints(human36m):
    scipy_io = pytest.importorskip("scipy.io")
    data = read_human36m(human36m, "test")
    assert [f"{p.parent.name}/{p.name}" for p in data.images] == [
        "Directions.54138969/000001.jpg", "Directions.54138969/000002.jpg",
        "Walking 1.55011271/000001.jpg", "Walking 1.55011271/000002.jpg"]  # Eating is not an evaluated action
    assert data.masks[0] == human36m / "S11" / "BackgroudMask" / "Directions.54138969" / "000001.png"
    stored = scipy_io.loadmat(human36m / "S11" / "Landmarks" / "Walking 1.55011271" / "000002.mat")["keypoints_2d"]
    np.testing.assert_allclose(data.keypoints[3], stored * 128, rtol=1e-6)
    assert data.keypoints.shape == (4, 32, 2) and data.visible.all() and data.sizes[0].tolist() == [128, 128]
    with pytest.raises(InputError, match="missing .*S5"):
        read_human36m(human36m, "train")


def test_human36m_malformed_landmarks_are_input_errors(human36m):
    scipy_io = pytest.importorskip("scipy.io")
    mat = human36m / "S11" / "Landmarks" / "Directions.54138969" / "000002.mat"
    scipy_io.savemat(mat, {"keypoints_2d": np.full((32, 2), 64.0)})
    with pytest.raises(InputError, match="pixel coordinates"):
        read_human36m(human36m, "test")
    scipy_io.savemat(mat, {"joints": np.zeros((32, 2))})
    with pytest.raises(InputError, match="no variable keypoints_2d"):
        read_human36m(human36m, "test")
    mat.write_bytes(b"not a mat file at all")
    with pytest.raises(InputError, match="not a MATLAB file"):
        read_human36m(human36m, "test")


def test_human36m_orientation_invariant_error_in_128_pixels():
    rng = np.random.default_rng(1)
    gt = rng.uniform(0, 256, (2, 32, 2))
    shifted = gt + [2.56, 0]  # 0.01 of a 256-pixel frame: 1.28 pixels at 128
    assert orientation_invariant_error(shifted, gt, (256, 256)) == pytest.approx(1.28)
    mirrored = gt[:, swap_permutation(((1, 6), (2, 7)), 32)]  # left/right legs exchanged
    assert orientation_invariant_error(mirrored, gt, (256, 256), swap_pairs=((1, 6), (2, 7))) == pytest.approx(0)
    assert orientation_invariant_error(mirrored, gt, (256, 256), swap_pairs=()) > 1
    official = swap_permutation(H36M_SWAP_PAIRS, 32)  # as released: (20, 28) then (21, 28)
    assert official[[1, 6, 20, 21, 28, 29]].tolist() == [6, 1, 28, 28, 21, 29]
    with pytest.raises(InputError, match="image_size"):
        orientation_invariant_error(gt, gt, (256, 0))


# --- the paper's protocol through `edgereid evaluate keypoints --dataset` -----------------------------------------


def test_celeba_benchmark_reads_out_and_scores_against_the_mean_pose(tmp_path):
    from edgereid.cli import main

    root = tmp_path / "celeba"
    row = "69  109  106  113   77  142   73  152  108  154"  # every face has the same landmarks
    names = [f"{i:06d}.jpg" for i in range(1, 44)]  # the read-out of K=17 points needs 2K = 34 to fit
    (root / "MAFL").mkdir(parents=True)
    (root / "list_landmarks_align_celeba.txt").write_text(f"{len(names)}\n{CELEBA_HEADER}\n"
                                                          + "\n".join(f"{n} {row}" for n in names))
    (root / "MAFL" / "training.txt").write_text("\n".join(names[:40]))
    (root / "MAFL" / "testing.txt").write_text("\n".join(names[40:]))
    rng = np.random.default_rng(0)
    for name in names:
        (root / "img_align_celeba").mkdir(exist_ok=True)
        cv2.imwrite(str(root / "img_align_celeba" / name), rng.integers(0, 256, (218, 178, 3), dtype=np.uint8))
    out = tmp_path / "report"
    assert main(["evaluate", "keypoints", "--dataset", "celeba", "--root", str(root), "--out", str(out),
                 "--model", "bundled person keypoints=edgereid/bundled/keypoints.onnx"]) == 0
    report = json.loads((out / "keypoints_celeba.json").read_text())
    assert (report["fit_images"], report["test_images"]) == (40, 3)
    assert report["results"]["mean-pose baseline"] == pytest.approx(0.0, abs=1e-9)  # identical landmarks
    assert 0.0 < report["results"]["bundled person keypoints"] < 1000.0
    assert main(["evaluate", "keypoints", "--dataset", "celeba", "--root", str(tmp_path / "missing"),
                 "--model", "m=edgereid/bundled/keypoints.onnx", "--out", str(out)]) == 2
    assert main(["evaluate", "keypoints", "--model", "m=edgereid/bundled/keypoints.onnx", "--out", str(out)]) == 2
