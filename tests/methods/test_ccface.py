"""CCFace (design doc methods.md §4.4, reconstructed from the abstract): gradients, margin, reductions, errors."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch.nn import functional as F  # noqa: E402

from edgereid.errors import CheckpointError, ConfigError  # noqa: E402
from edgereid.methods.ccface import (  # noqa: E402
    AdaptiveAngularPenalty, CCFaceConfig, CCFaceObjective, Predictor, _placed_penalty, check_student_fits,
    cross_resolution_alignment, load_face_teacher, lr_repulsion, shared_proxy_loss)
from edgereid.methods.ccface_losses import hr_prediction_consistency  # noqa: E402
from edgereid.models.checkpoint import save_checkpoint  # noqa: E402
from edgereid.models import create_model  # noqa: E402


@pytest.fixture
def teacher_checkpoint(tmp_path):
    torch.manual_seed(0)
    teacher = create_model("test_face_teacher", num_classes=5)
    return save_checkpoint(teacher, tmp_path / "teacher.safetensors")


def test_teacher_and_proxies_get_no_gradient_the_student_does(teacher_checkpoint):
    teacher, card, proxies = load_face_teacher(teacher_checkpoint)
    assert card.input.height == 48
    torch.manual_seed(1)
    student = create_model("test_face")
    config = CCFaceConfig(method="ccface", teacher="t", student="test_face", out="x", hr_branch="teacher")
    objective = CCFaceObjective(student, Predictor(32, 16), proxies, config)
    labels = torch.tensor([0, 1, 2, 3, 4, 0])
    hr = F.normalize(teacher.features(torch.randn(6, 3, 48, 48)))
    score = (hr * F.normalize(proxies)[labels]).sum(1)
    terms = objective(torch.randn(6, 3, 32, 32), hr, score, labels)
    assert set(terms) == {"proxy", "align", "repulsion"}
    sum(terms.values()).backward()
    assert all(p.grad is None for p in teacher.parameters())
    assert not proxies.requires_grad
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in student.parameters() if p.requires_grad)


def test_margin_is_monotone_in_the_teacher_score_and_clipped():
    penalty = AdaptiveAngularPenalty(margin_max=0.4, score_low=0.2, score_high=0.8)
    scores = torch.linspace(-1, 1, 201)
    margins = penalty(scores)
    assert (margins.diff() >= 0).all()
    assert float(margins.min()) == 0.0 and float(margins.max()) == pytest.approx(0.4)
    assert (margins[scores <= 0.2] == 0).all() and (margins[scores >= 0.8] == pytest.approx(0.4))
    with pytest.raises(ConfigError, match="score_low < score_high"):
        AdaptiveAngularPenalty(score_low=0.5, score_high=0.5)
    # fitted to the teacher's scores: the ramp spans their 5%-95% range, so the margin really adapts
    scores = torch.linspace(0.90, 0.98, 1001)
    fitted = AdaptiveAngularPenalty(margin_max=0.4, quantiles=(0.05, 0.95)).fitted(scores)
    assert fitted.score_low == pytest.approx(0.904, abs=1e-4) and fitted.score_high == pytest.approx(0.976, abs=1e-4)
    margins = fitted(scores)
    assert float((margins == 0).float().mean()) == pytest.approx(0.05, abs=0.01)
    assert float((margins == 0.4).float().mean()) == pytest.approx(0.05, abs=0.01)
    assert float(AdaptiveAngularPenalty(quantiles=()).fitted(scores)(scores).mean()) == pytest.approx(0.4)
    constant = AdaptiveAngularPenalty(margin_max=0.3, adaptive=False).fitted(scores)
    assert torch.equal(constant(scores), torch.full_like(scores, 0.3))
    with pytest.raises(ConfigError, match="two increasing fractions"):
        AdaptiveAngularPenalty(quantiles=(0.9, 0.1))


def test_zero_margin_is_normalised_softmax_over_the_shared_proxies():
    torch.manual_seed(2)
    embeddings, proxies = torch.randn(7, 16), torch.randn(5, 16)
    labels = torch.tensor([0, 1, 2, 3, 4, 1, 2])
    expected = F.cross_entropy(30.0 * F.normalize(embeddings) @ F.normalize(proxies).T, labels)
    loss = shared_proxy_loss(embeddings, labels, proxies, torch.zeros(7), scale=30.0)
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-5)
    with_margin = shared_proxy_loss(embeddings, labels, proxies, torch.full((7,), 0.3), scale=30.0)
    assert with_margin > loss


def test_repulsion_falls_as_lr_embeddings_of_different_identities_spread():
    torch.manual_seed(3)
    labels = torch.tensor([0, 1, 2, 3])
    centre, spread = torch.randn(1, 8), torch.randn(4, 8)
    values = [float(lr_repulsion(centre + t * spread, labels)) for t in (0.01, 0.3, 1.0, 3.0, 10.0)]
    assert all(a > b for a, b in zip(values, values[1:]))
    same = torch.tensor([1, 1, 1, 1])
    assert float(lr_repulsion(centre + spread, same)) == 0.0  # no different-identity pair to push


def test_the_stop_gradient_branch_gets_no_gradient():
    torch.manual_seed(4)
    hr_branch, lr_branch = torch.nn.Linear(8, 8), torch.nn.Linear(8, 8)
    x = torch.randn(5, 8)
    cross_resolution_alignment(lr_branch(x), hr_branch(x)).backward()
    assert hr_branch.weight.grad is None and lr_branch.weight.grad.abs().sum() > 0
    # through the objective: an HR target that still carries its graph must not pass gradient back
    student = create_model("test_face")
    config = CCFaceConfig(method="ccface", teacher="t", student="test_face", out="x", repulsion_weight=0.0)
    objective = CCFaceObjective(student, Predictor(32, 16), torch.randn(5, 32), config)
    hr_side = torch.nn.Linear(32, 32)
    hr_target = hr_side(torch.randn(6, 32))
    labels = torch.tensor([0, 1, 2, 3, 4, 0])
    sum(objective(torch.randn(6, 3, 32, 32), hr_target, torch.full((6,), 0.5), labels).values()).backward()
    assert hr_side.weight.grad is None
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in student.parameters())


def test_margin_from_the_lr_size_and_from_the_students_own_cosine():
    config = CCFaceConfig(method="ccface", teacher="t", student="test_face", out="x", margin_from="lr_size",
                          lr_sizes=(8, 32))
    penalty = _placed_penalty(config, torch.rand(10))
    sizes = torch.tensor([8.0, 14.0, 20.0, 32.0, 112.0])  # 112: an undegraded HR sample (hr_fraction)
    assert torch.allclose(penalty(sizes), torch.tensor([0.0, 0.1, 0.2, 0.4, 0.4]))
    # the student's own cosine: a sample the student already places near its proxy gets the larger margin
    torch.manual_seed(6)
    proxies = torch.randn(3, 32)
    student = create_model("test_face")
    by_cosine = CCFaceConfig(method="ccface", teacher="t", student="test_face", out="x",
                             margin_from="student_lr_cosine")
    objective = CCFaceObjective(student, None, proxies, by_cosine)
    lr = torch.stack([proxies[0] + 0.1 * torch.randn(32), torch.randn(32), -proxies[2]])
    margins = objective.margins(lr, torch.zeros(3), torch.tensor([0, 1, 2]))
    assert margins[0] == pytest.approx(0.4) and margins[2] == 0.0 and 0.0 <= margins[1] <= 0.4
    with pytest.raises(ConfigError, match="margin_from"):
        CCFaceConfig(method="ccface", teacher="t", student="s", out="x", margin_from="hr_size")
    with pytest.raises(ConfigError, match="hr_fraction"):
        CCFaceConfig(method="ccface", teacher="t", student="s", out="x", hr_fraction=1.0)


def test_hr_prediction_target_uses_confident_hr_predictions_as_pseudo_labels():
    torch.manual_seed(7)
    proxies = F.normalize(torch.randn(4, 16))
    hr = proxies[[2, 0]] + 0.01 * torch.randn(2, 16)  # the HR branch predicts classes 2 and 0, confidently
    lr = torch.randn(2, 16, requires_grad=True)
    loss = hr_prediction_consistency(lr, hr, proxies, scale=32.0, threshold=0.95)
    expected = F.cross_entropy(32.0 * F.normalize(lr) @ proxies.T, torch.tensor([2, 0]))
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert lr.grad.abs().sum() > 0
    unsure = hr_prediction_consistency(lr, torch.zeros(2, 16) + 1e-3, proxies, scale=1.0, threshold=0.95)
    assert float(unsure.detach()) == 0.0  # no confident prediction: nothing to learn from


def test_bad_teachers_and_students_are_named(tmp_path, teacher_checkpoint):
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_face_teacher(tmp_path / "missing.safetensors")
    no_proxies = save_checkpoint(create_model("test_face_teacher"), tmp_path / "plain.safetensors")
    with pytest.raises(CheckpointError, match="no classifier proxies"):
        load_face_teacher(no_proxies)
    reid = save_checkpoint(create_model("test_reid", num_classes=3), tmp_path / "reid.safetensors")
    with pytest.raises(CheckpointError, match="not a face model"):
        load_face_teacher(reid)
    with pytest.raises(ConfigError, match=r"embeds in 64 dimensions, the teacher in 32"):
        check_student_fits(create_model("test_face", embedding_dim=64), 32, "test_face")
    with pytest.raises(ConfigError, match="hr_branch"):
        CCFaceConfig(method="ccface", teacher="t", student="s", out="x", hr_branch="ema")
    import json

    from edgereid.data.face_sets import FaceData
    from edgereid.methods.ccface import check_teacher_data

    recorded = save_checkpoint(create_model("test_face_teacher", num_classes=5), tmp_path / "recorded.safetensors",
                               extra={"edgereid.config": json.dumps({"data": {"seed": 3, "identities": 5}})})
    check_teacher_data(recorded, FaceData(seed=3, identities=5, per_identity=2))
    with pytest.raises(ConfigError, match="(?s)other identities.*seed: 3"):
        check_teacher_data(recorded, FaceData(seed=4, identities=5))


def test_distill_end_to_end_through_the_cli(tmp_path, teacher_checkpoint, capsys):
    import yaml

    from edgereid.card import read_card
    from edgereid.cli import main

    base = {"data": {"seed": 3, "identities": 5, "per_identity": 3}, "batch_size": 5,
            "optim": {"epochs": 1, "threads": 1}}
    path = tmp_path / "ccface.yaml"
    path.write_text(yaml.safe_dump({"method": "ccface", "teacher": str(teacher_checkpoint), "student": "test_face",
                                    "out": str(tmp_path / "student"), **base}))
    assert main(["distill", "--config", str(path)]) == 0
    card = read_card(tmp_path / "student" / "model.onnx")
    assert card.task == "face" and card.embedding_dim == 32
    history = (tmp_path / "student" / "history.json").read_text()
    assert "proxy" in history and "repulsion" in history
    assert main(["distill", "--config", str(path), "--set", "method=coreface"]) != 0
    assert "run it with `edgereid train`" in capsys.readouterr().err
    wrong_data = tmp_path / "wrong.yaml"
    wrong_data.write_text(yaml.safe_dump({"method": "ccface", "teacher": str(teacher_checkpoint),
                                          "student": "test_face", "out": str(tmp_path / "s2"),
                                          **{**base, "data": {"seed": 3, "identities": 4, "per_identity": 3}}}))
    assert main(["distill", "--config", str(wrong_data)]) != 0
    assert "5 proxies but the data has 4 identities" in capsys.readouterr().err
    assert np.isfinite(yaml.safe_load(history)["history"][0]["proxy"])


@pytest.mark.parametrize("switches", [{"margin_from": "lr_size", "hr_fraction": 0.5, "repulsion_weight": 0.0},
                                      {"margin_from": "student_lr_cosine", "asymmetric": "hr_prediction_target",
                                       "repulsion_weight": 0.1}])
def test_distill_with_the_ccface_switches(tmp_path, teacher_checkpoint, switches):
    import json

    import yaml

    from edgereid.cli import main

    faithful = yaml.safe_load(open("samples/configs/ccface_faithful.yaml"))
    assert (faithful["margin_from"], faithful["repulsion_weight"]) == ("lr_size", 0.0)
    path = tmp_path / "ccface.yaml"
    path.write_text(yaml.safe_dump({**faithful, "teacher": str(teacher_checkpoint), "student": "test_face",
                                    "out": str(tmp_path / "student"), "batch_size": 5,
                                    "data": {"seed": 3, "identities": 5, "per_identity": 3},
                                    "optim": {"epochs": 1, "threads": 1}, **switches}))
    assert main(["distill", "--config", str(path)]) == 0
    terms = json.loads((tmp_path / "student" / "history.json").read_text())["history"][0]
    assert np.isfinite(terms["proxy"]) and np.isfinite(terms["align"])
    assert ("repulsion" in terms) == (switches["repulsion_weight"] != 0)
