"""Tests of edgereid.eval.metrics: torchreid cross-check of CMC/mAP, hand-computed cases for all."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pytest

from edgereid.errors import InputError
from edgereid.eval import metrics
from edgereid.eval.metrics import cosine_distance_matrix, evaluate_rank, identification_top1, nme, pck
from edgereid.ops.scores import tar_at_far, threshold_at_far


def _torchreid_rank_module():
    """torchreid's rank.py loaded on its own: the torchreid package itself does not import here."""
    spec = importlib.util.find_spec("torchreid")
    if spec is None or spec.origin is None:
        pytest.skip("torchreid is not installed, so there is no reference CMC/mAP to compare with")
    path = Path(spec.origin).parent / "reid/metrics/rank.py"
    module_spec = importlib.util.spec_from_file_location("torchreid_rank_reference", path)
    module = importlib.util.module_from_spec(module_spec)
    with warnings.catch_warnings():  # it warns when its Cython extension is not built
        warnings.simplefilter("ignore")
        module_spec.loader.exec_module(module)
    return module


def _reid_split(noise: float, seed: int = 0):
    """Query/gallery features around per-identity centres; larger ``noise`` makes ranking harder.

    Some query identities are absent from the gallery (skipped queries) and some gallery
    identities never appear as queries (distractors).
    """
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(40, 32))
    g_pids = rng.integers(0, 35, size=300)
    g_camids = rng.integers(0, 4, size=300)
    q_pids = np.concatenate([np.arange(30), np.arange(30), np.arange(35, 40)])
    q_camids = rng.integers(0, 4, size=len(q_pids))
    g_feat = centres[g_pids] + noise * rng.normal(size=(len(g_pids), 32))
    q_feat = centres[q_pids] + noise * rng.normal(size=(len(q_pids), 32))
    return cosine_distance_matrix(q_feat, g_feat), q_pids, g_pids, q_camids, g_camids


@pytest.mark.parametrize("noise, rank1_range", [(0.3, (0.9, 1.0)), (8.0, (0.0, 0.5))],
                         ids=["easy", "near-random"])
def test_evaluate_rank_matches_torchreid(noise, rank1_range):
    reference = _torchreid_rank_module()
    split = _reid_split(noise)
    cmc, mean_ap = evaluate_rank(*split, max_rank=50)
    ref_cmc, ref_map = reference.evaluate_rank(*split, max_rank=50, use_metric_cuhk03=False,
                                               use_cython=False)
    assert cmc.shape == (50,)
    np.testing.assert_allclose(cmc, ref_cmc, atol=1e-6, rtol=0)
    assert mean_ap == pytest.approx(ref_map, abs=1e-6)
    assert rank1_range[0] <= cmc[0] <= rank1_range[1]  # the two levels really differ


def test_evaluate_rank_same_result_in_query_blocks(monkeypatch):
    split = _reid_split(noise=1.0)
    whole = evaluate_rank(*split)
    monkeypatch.setattr(metrics, "_RANK_BLOCK_ELEMENTS", 7 * split[0].shape[1])  # 7 queries a block
    blocked = evaluate_rank(*split)
    np.testing.assert_array_equal(whole[0], blocked[0])
    assert whole[1] == blocked[1]


def test_evaluate_rank_two_queries_by_hand():
    # Gallery (pid, cam): (1,0) (2,1) (1,1) (3,1) (1,2).
    g_pids, g_camids = np.array([1, 2, 1, 3, 1]), np.array([0, 1, 1, 1, 2])
    q_pids, q_camids = np.array([1, 2, 9]), np.array([0, 0, 0])
    distmat = np.array([[0.1, 0.2, 0.3, 0.4, 0.5],
                        [0.2, 0.1, 0.3, 0.4, 0.5],
                        [0.1, 0.2, 0.3, 0.4, 0.5]])
    # Query pid 1 / cam 0: (1,0) is removed; ranking pid 2, 1, 3, 1 -> hits at ranks 2 and 4,
    # AP = (1/2 + 2/4) / 2 = 0.5. Query pid 2: its only match (2,1) comes first, AP = 1.
    # Query pid 9 has no match and is skipped. CMC@1 = 1/2, CMC@2.. = 1, mAP = 0.75.
    cmc, mean_ap = evaluate_rank(distmat, q_pids, g_pids, q_camids, g_camids)
    np.testing.assert_allclose(cmc, [0.5, 1.0, 1.0, 1.0, 1.0])
    assert mean_ap == pytest.approx(0.75)


def test_evaluate_rank_truncates_curve_to_max_rank():
    distmat = np.array([[0.3, 0.1, 0.2]])
    cmc, mean_ap = evaluate_rank(distmat, [1], [1, 2, 3], [0], [1, 1, 1], max_rank=2)
    np.testing.assert_allclose(cmc, [0.0, 0.0])
    assert mean_ap == pytest.approx(1 / 3)


def test_evaluate_rank_refuses_bad_inputs():
    distmat = np.zeros((2, 3))
    with pytest.raises(InputError, match="does not match"):
        evaluate_rank(distmat, [1, 2], [1, 2], [0, 0], [1, 1, 1])
    with pytest.raises(InputError, match="no query has a true match"):
        evaluate_rank(distmat, [1, 2], [1, 2, 3], [0, 0], [0, 0, 0])


def test_cosine_distance_matrix():
    a = np.array([[1.0, 0.0], [0.0, 3.0]])
    b = np.array([[2.0, 0.0], [-1.0, 0.0], [1.0, 1.0]])
    expected = [[0.0, 2.0, 1 - np.sqrt(0.5)], [1.0, 1.0, 1 - np.sqrt(0.5)]]
    np.testing.assert_allclose(cosine_distance_matrix(a, b), expected, atol=1e-12)
    with pytest.raises(InputError, match="zero"):
        cosine_distance_matrix(a, np.zeros((1, 2)))


def test_threshold_and_tar_at_far():
    impostor = np.arange(1, 11) / 10  # 0.1 .. 1.0
    assert threshold_at_far(impostor, 0.1) == pytest.approx(0.9)  # only 1.0 exceeds it
    assert threshold_at_far(impostor, 0.25) == pytest.approx(0.8)  # 2 of 10 may pass
    assert threshold_at_far(impostor, 0.0) == pytest.approx(1.0)
    assert threshold_at_far(impostor, 1.0) == float("-inf")
    tar, threshold = tar_at_far([0.85, 0.95, 0.5, 0.99], impostor, 0.1)
    assert (tar, threshold) == (0.5, pytest.approx(0.9))


def test_threshold_at_far_with_ties_and_rounding():
    # Three impostors tie at 0.5: any threshold below 0.5 accepts 3/4 > 0.25.
    assert threshold_at_far([0.5, 0.5, 0.5, 0.2], 0.25) == 0.5
    # 0.29 * 100 rounds to 28.999...; 29 accepted impostors are still within the target.
    impostor = np.arange(100) / 100
    threshold = threshold_at_far(impostor, 0.29)
    assert threshold == pytest.approx(0.70)
    assert np.mean(impostor > threshold) <= 0.29


def test_threshold_at_far_refuses_bad_inputs():
    with pytest.raises(InputError, match="fraction"):
        threshold_at_far([0.1, 0.2], 1.5)
    with pytest.raises(InputError, match="empty"):
        threshold_at_far([], 0.1)


def test_identification_top1():
    gallery = np.eye(3)
    gallery_ids = np.array(["a", "b", "c"])
    probes = np.array([[5.0, 0.5, 0.0], [0.1, 2.0, 0.0]])  # nearest a, nearest b
    assert identification_top1(probes, ["a", "b"], gallery, gallery_ids) == 1.0
    assert identification_top1(probes, ["a", "c"], gallery, gallery_ids) == 0.5


def test_pck_one_joint_inside_radius():
    gt = np.zeros((1, 3, 2))
    pred = np.array([[[6.0, 8.0], [11.0, 0.0], [90.0, 90.0]]])  # errors 10 (on the radius), 11, far
    visible = np.array([[True, True, False]])
    boxes = np.array([[0.0, 0.0, 100.0, 50.0]])  # radius = 0.1 * max(100, 50) = 10
    assert pck(pred, gt, visible, boxes, alpha=0.1) == 0.5
    assert pck(pred, gt, visible, boxes, alpha=0.2) == 1.0


def test_nme_by_hand():
    gt = np.zeros((2, 2, 2))
    pred = np.array([[[3.0, 4.0], [0.0, 0.0]], [[0.0, 4.0], [50.0, 0.0]]])
    visible = np.array([[True, False], [True, False]])
    # Visible errors: 5 / 10 and 4 / 20 -> mean 0.35.
    assert nme(pred, gt, visible, np.array([10.0, 20.0])) == pytest.approx(0.35)


def test_keypoint_metrics_refuse_bad_inputs():
    gt = np.zeros((1, 2, 2))
    with pytest.raises(InputError, match="no visible joint"):
        nme(gt, gt, np.zeros((1, 2), bool), [1.0])
    with pytest.raises(InputError, match="positive"):
        nme(gt, gt, np.ones((1, 2), bool), [0.0])
    with pytest.raises(InputError, match="does not match"):
        pck(gt, np.zeros((1, 3, 2)), np.ones((1, 2), bool), [[0, 0, 1, 1]])
