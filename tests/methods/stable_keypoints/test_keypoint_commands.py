"""The keypoint commands end to end on tiny random models: learn, label, distill, read-out, evaluate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from edgereid.cli import main  # noqa: E402
from edgereid.errors import InputError, ModelCardError  # noqa: E402
from edgereid.methods.stable_keypoints import geometry  # noqa: E402
from tests.methods.stable_keypoints.conftest import TINY_LAYERS  # noqa: E402


@pytest.fixture(scope="module")
def crop_folders(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("kp")
    for name, seed in (("train", 130), ("test", 710)):
        assert main(["synth", "--layout", "person-crops", "--out", str(root / name), "--seed", str(seed),
                     "--identities", "8", "--cameras", "2", "--frames", "6"]) == 0
    return {"train": root / "train", "test": root / "test", "root": root}


@pytest.fixture(scope="module")
def teacher(crop_folders, tiny_ldm_path) -> Path:
    out = crop_folders["root"] / "teacher"
    args = ["keypoints", "learn", "--config", "samples/configs/stable_keypoints_world.yaml",
            "--set", f"ldm={tiny_ldm_path}", "--set", f"crops={crop_folders['train'] / 'images'}",
            "--set", f"out={out}", "--set", "num_tokens=12", "--set", "candidates=6", "--set", "top_k=4",
            "--set", "steps=2", "--set", "batch_size=2", "--set", "num_indices=4", "--set", "tta_views=2",
            "--set", "map_hw=[16, 12]", "--set", f"layers={list(TINY_LAYERS)}"]
    assert main(args) == 0
    return out / "teacher.safetensors"


def test_learn_writes_embeddings_indices_and_curves(teacher):
    from safetensors.torch import load_file

    tensors = load_file(teacher)
    assert tensors["embedding"].shape == (12, 16)
    indices = tensors["indices"].tolist()
    assert len(indices) == 4 and len(set(indices)) == 4 and all(0 <= i < 12 for i in indices)
    assert (teacher.parent / "loss.png").stat().st_size > 0


def test_label_distill_readout_and_evaluate(teacher, crop_folders, tmp_path):
    labels = tmp_path / "labels.npz"
    assert main(["keypoints", "label", "--teacher", str(teacher), "--crops", str(crop_folders["train"] / "images"),
                 "--out", str(labels), "--k", "4", "--preview", str(tmp_path / "preview.png")]) == 0
    with np.load(labels) as data:
        points, confidence, files = data["points"], data["confidence"], data["files"]
    assert points.shape[1:] == (4, 2) and confidence.shape == points.shape[:2] and len(files) == len(points)
    assert (tmp_path / "preview.png").is_file()

    student = tmp_path / "student"
    assert main(["distill", "--config", "samples/configs/stable_keypoints_student.yaml", "--set", "student=test_keypoints",
                 "--set", f"out={student}", "--set", f"crops={crop_folders['train'] / 'images'}",
                 "--set", f"labels={labels}", "--set", "optim.epochs=1", "--set", "batch_size=8",
                 "--set", "equivariance_weight=1.0"]) == 0
    from edgereid.card import read_card

    card = read_card(student / "model.onnx")
    assert card.output("coords").dims == (4, 2) and card.readout is None
    _assert_onnx_decodes_like_torch(student)

    named = tmp_path / "named.onnx"
    assert main(["keypoints", "readout", "--model", str(student / "model.onnx"), "--crops", str(crop_folders["train"]),
                 "--out", str(named)]) == 0
    named_card = read_card(named)
    assert len(named_card.readout.joint_names) == 17 and np.shape(named_card.readout.matrix) == (34, 8)

    # the pipeline now reports the 17 named joints for a frame
    from edgereid.runtime.backends import load_backend
    from edgereid.runtime.model import CropModel
    from edgereid.ops.geometry import plan_crops

    frame = np.full((120, 80, 3), 90, np.uint8)
    result = CropModel(load_backend(named)).run([frame], plan_crops(np.zeros(1, int), np.array([[10, 5, 50, 110]]),
                                                                       named_card.input))
    assert result.joints.shape == (1, 17, 2) and result.keypoints.shape == (1, 4, 2)

    out = tmp_path / "eval"
    assert main(["evaluate", "keypoints", "--model", f"teacher={teacher}", "--model", f"student={student / 'model.onnx'}",
                 "--fit", str(crop_folders["train"]), "--test", str(crop_folders["test"]), "--tta", "1",
                 "--out", str(out)]) == 0
    report = json.loads((out / "keypoints_unsup.json").read_text())
    assert set(report["results"]) == {"mean-pose baseline", "teacher", "student"}
    assert all(0.0 <= row["pck"] <= 1.0 for row in report["results"].values())


def test_tta_points_of_an_equivariant_map_land_on_their_dots():
    """Maps that follow the image (each token's map is one channel of the image, at half size) must peak where
    that channel's dot is, after 8 random affine views warped back and averaged; (x, y) order checked."""
    from edgereid.methods.stable_keypoints.teacher import tta_heatmaps

    dots = [(7, 30), (20, 5), (12, 18)]  # (x, y) of the dot in channel 0, 1, 2 of a 24 wide, 40 tall image
    pixels = torch.zeros(1, 3, 40, 24)
    for channel, (x, y) in enumerate(dots):
        pixels[0, channel, y - 1:y + 2, x - 1:x + 2] = 1.0
    half = lambda views: torch.nn.functional.avg_pool2d(views, 2)
    maps = tta_heatmaps(half, pixels, 8, {"degrees": 15.0, "scale": (0.8, 1.0), "translate": 0.25},
                        torch.Generator().manual_seed(0))
    found = geometry.argmax_xy(maps)[0].float()
    assert (found - torch.tensor(dots, dtype=torch.float32)).abs().max() <= 1.0


def test_padding_share_counts_points_in_letterbox_bars():
    placement = np.array([[8, 0, 16, 32]])  # a 16 px wide crop centred in a 32x32 input: bars at x < 8, x > 23
    points = np.array([[[7.0, 5.0], [7.6, 5.0], [23.4, 31.0], [24.0, 10.0]]])
    assert geometry.padding_mask(points, placement).tolist() == [[True, False, False, True]]
    assert geometry.share_in_padding(points, placement) == 0.5


def test_wrong_k_is_refused(teacher):
    from edgereid.methods.stable_keypoints.teacher import KeypointTeacher

    with pytest.raises(InputError, match="K=5"):
        KeypointTeacher(teacher, expected_k=5)


def test_crops_smaller_than_the_teacher_input_are_refused(teacher):
    from edgereid.methods.stable_keypoints.teacher import KeypointTeacher

    with pytest.raises(InputError, match="smaller than"):
        KeypointTeacher(teacher).predict_images([np.zeros((20, 10, 3), np.uint8)], progress=False)


def test_readout_matrix_of_the_wrong_shape_is_refused(tiny_models):
    from edgereid.card import KeypointReadout, read_card
    from edgereid.ops.readout import apply_matrix

    card = read_card(tiny_models["test_keypoints"]["onnx"])  # K = 17 points
    with pytest.raises(ModelCardError, match="34 columns"):
        card.replace(readout=KeypointReadout(matrix=np.zeros((4, 6)).tolist(), joint_names=("a", "b")))
    with pytest.raises(InputError, match="wrong shape"):
        apply_matrix(np.zeros((3, 17, 2)), np.zeros((4, 6)))


def test_readout_recovers_a_known_linear_map():
    from edgereid.ops.readout import fit_readout

    rng = np.random.default_rng(0)
    points = rng.uniform(-0.5, 0.5, (300, 5, 2))
    truth = rng.normal(size=(6, 10))
    joints = (points.reshape(300, -1) @ truth.T).reshape(300, 3, 2)
    visible = np.ones((300, 3), bool)
    visible[:40, 1] = False  # a joint unseen in some crops is fitted on the others
    joints[:40, 1] = 1e6  # whatever is written there must not matter
    assert np.abs(fit_readout(points, joints, visible) - truth).max() < 1e-6


def _assert_onnx_decodes_like_torch(run_dir: Path) -> None:
    """The exported student's coordinates equal torch's to 0.5 px at the input resolution."""
    import onnxruntime as ort

    from edgereid.models.checkpoint import load_checkpoint

    model, card = load_checkpoint(run_dir / "model.safetensors")
    pixels = torch.randn(3, 3, card.input.height, card.input.width, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        expected = model.eval()(pixels)[1].numpy()
    session = ort.InferenceSession(str(run_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(["coords"], {session.get_inputs()[0].name: pixels.numpy()})[0]
    assert np.abs(got - expected).max() <= 0.5
