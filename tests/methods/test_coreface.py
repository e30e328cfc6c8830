"""CoReFace (design doc methods.md §5.7): dual-dropout views, pair coupling, masking, margin, schedule, clipping."""

from __future__ import annotations

import math
from unittest import mock

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch.nn import functional as F  # noqa: E402

from edgereid.methods.coreface import (  # noqa: E402
    AdaptiveMargin, CoReFaceObjective, DropoutSchedule, FaceMarginConfig, batch_margin, contrastive_loss,
    pair_similarity)
from edgereid.methods.losses import ArcMarginHead  # noqa: E402
from edgereid.models import create_model  # noqa: E402


def _views(dropout: float, labels: torch.Tensor, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(seed)
    model = create_model("test_face", num_classes=5)
    pre = model.pre_embedding(torch.randn(len(labels), 3, 32, 32))
    both = model.embedding_head(torch.cat([F.dropout(pre, dropout, training=True),
                                           F.dropout(pre, dropout, training=True)]))
    return both.chunk(2)


def test_without_dropout_the_views_agree_and_the_margin_is_one_minus_the_hardest_negative():
    labels = torch.tensor([0, 1, 2, 3, 4, 5])
    view1, view2 = _views(0.0, labels)
    torch.testing.assert_close(view1, view2)
    similarity = pair_similarity(view1, view2, labels)
    torch.testing.assert_close(similarity.diagonal(), torch.ones(6))
    off = similarity.detach().clone().fill_diagonal_(0.0)
    assert batch_margin(similarity) == pytest.approx(1.0 - float(off.amax(1).mean()), abs=1e-6)


def test_margin_by_hand_with_a_repeated_identity():
    # unit 2-d views: faces 0 and 1 share an identity, face 2 is someone else
    angle = torch.tensor([0.0, 0.3, 1.2])
    view = torch.stack([angle.cos(), angle.sin()], 1)
    labels = torch.tensor([7, 7, 9])
    s = pair_similarity(view, view, labels)
    cos = lambda a, b: math.cos(a - b)  # noqa: E731
    assert float(s[0, 1]) == 0.0 and float(s[1, 0]) == 0.0  # same identity, masked to 0
    # hardest negatives after masking and zeroing the diagonal: row 0 -> max(0, cos(0-1.2)), etc.
    hardest = [max(0.0, cos(0.0, 1.2)), max(0.0, cos(0.3, 1.2)), max(cos(1.2, 0.0), cos(1.2, 0.3))]
    assert batch_margin(s) == pytest.approx(1.0 - sum(hardest) / 3, abs=1e-6)


def test_same_identity_pairs_pass_no_gradient_and_others_do():
    labels = torch.tensor([0, 0, 1, 2])
    view1, view2 = (v.detach().requires_grad_(True) for v in _views(0.5, labels))
    similarity = pair_similarity(view1, view2, labels)
    row = 0
    logits = 64.0 * (similarity[row] - 0.2 * F.one_hot(torch.tensor(row), 4))
    F.cross_entropy(logits[None], torch.tensor([row])).backward()
    grad_norm = view2.grad.norm(dim=1)
    assert grad_norm[1] == 0.0  # same identity as row 0: masked to a constant 0
    assert (grad_norm[[0, 2, 3]] > 0).all()
    assert similarity[0, 1] == 0.0 and similarity[1, 0] == 0.0


def test_contrastive_loss_matches_a_hand_computed_3x3_example():
    s = [[0.9, 0.1, -0.2], [0.3, 0.8, 0.0], [0.05, 0.4, 0.7]]
    margin, scale = 0.1, 64.0
    expected = 0.0
    for i in range(3):
        logits = [scale * (s[i][j] - (margin if i == j else 0.0)) for j in range(3)]
        top = max(logits)
        expected += -(logits[i] - top) + math.log(sum(math.exp(v - top) for v in logits))
    loss = contrastive_loss(torch.tensor(s, dtype=torch.float64), margin, scale)
    assert float(loss) == pytest.approx(expected / 3, rel=1e-9)


def test_margin_ema_weights_the_new_batch_as_the_official_code():
    margin = AdaptiveMargin(ema_new=0.99)
    assert margin.update(0.5) == pytest.approx(0.495)
    assert margin.update(0.2) == pytest.approx(0.99 * 0.2 + 0.01 * 0.495)


def test_stage_switch_at_the_configured_epoch():
    schedule = DropoutSchedule(stage2_epoch=7, stage1=0.4, stage2=0.6)
    assert [schedule.stage(e) for e in (0, 6, 7, 20)] == [(1, 0.4), (1, 0.4), (2, 0.6), (2, 0.6)]
    torch.manual_seed(0)
    model = create_model("test_face", num_classes=4)
    images, labels = torch.randn(8, 3, 32, 32), torch.tensor([0, 1, 2, 3] * 2)
    real_dropout = F.dropout
    for method, epoch, expected_p, expected_terms in (("coreface", 6, [0.4], {"arcface"}),
                                                      ("coreface", 7, [0.6, 0.6], {"arcface", "contrastive"}),
                                                      ("arcface", 7, [0.6], {"arcface"})):
        seen = []

        def spy(x, p=0.5, training=True, inplace=False):
            seen.append(p)
            return real_dropout(x, p, training, inplace)

        objective = CoReFaceObjective(model, ArcMarginHead(32, 4), FaceMarginConfig(
            method=method, model="test_face", out="x", dropout=schedule))
        with mock.patch("edgereid.methods.coreface.F.dropout", spy):
            terms = objective(images, labels, epoch=epoch)
        assert set(terms) == expected_terms and seen == expected_p, (method, epoch)
        assert (objective.margin.value != 0.0) == ("contrastive" in terms)


def test_training_clips_the_backbone_only_and_stores_the_proxies(tmp_path):
    from edgereid.methods.coreface import train
    from edgereid.models.checkpoint import load_checkpoint

    config = FaceMarginConfig.load(_write_config(tmp_path), {})
    clipped_sets = []
    real = torch.nn.utils.clip_grad_norm_

    def spy(params, *args, **kwargs):
        clipped_sets.append({id(p) for p in params})
        return real(params, *args, **kwargs)

    created = []
    real_create = create_model

    def remember(*args, **kwargs):
        created.append(real_create(*args, **kwargs))
        return created[-1]

    with mock.patch("torch.nn.utils.clip_grad_norm_", spy), \
            mock.patch("edgereid.methods.coreface.create_model", remember):
        checkpoint = train(config, {})
    model = created[0]
    backbone = {id(p) for name, p in model.named_parameters() if not name.startswith("classifier.")}
    assert clipped_sets and all(s == backbone for s in clipped_sets)
    loaded, card = load_checkpoint(checkpoint)
    assert card.task == "face" and loaded.classifier.weight.shape == (4, 32)
    assert loaded.classifier.weight.abs().sum() > 0


def _write_config(tmp_path) -> str:
    import yaml

    path = tmp_path / "coreface.yaml"
    path.write_text(yaml.safe_dump({
        "method": "coreface", "model": "test_face", "out": str(tmp_path / "run"), "export": False,
        "data": {"seed": 3, "identities": 4, "per_identity": 4}, "batch_size": 8,
        "optim": {"epochs": 2, "threads": 1}, "dropout": {"stage2_epoch": 1}}))
    return str(path)


def test_lr_sizes_are_checked(tmp_path):
    from edgereid.errors import ConfigError

    with pytest.raises(ConfigError, match="lr_sizes"):
        FaceMarginConfig.load(_write_config(tmp_path), {"lr_sizes": [32, 8]})
    assert np.array(FaceMarginConfig.load(_write_config(tmp_path), {"lr_sizes": [8, 32]}).lr_sizes).tolist() == [8, 32]
