"""Evaluation metrics for the three tasks, in NumPy only (no torch) so that CPU-only gates run them.

* Re-identification: CMC and mAP under the Market-1501 protocol (:func:`evaluate_rank`).
* Faces: threshold and true-accept rate at a false-accept rate, closed-set top-1 identification.
* Keypoints: PCK relative to the person box and NME relative to a per-sample normaliser.

Scores are cosine similarities where higher means "more alike"; a pair is *accepted* when its score
is strictly greater than the threshold. Every function raises :class:`~edgereid.errors.InputError`
on malformed inputs instead of returning a silently wrong number.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from edgereid.errors import InputError
from edgereid.ops.postprocess import l2_normalize
from edgereid.ops.scores import checked_array as _array

# Queries are ranked in blocks so that the [block, gallery] work arrays stay near this size.
_RANK_BLOCK_ELEMENTS = 1 << 21


def _require_shape(array: np.ndarray, name: str, shape: tuple[int, ...]) -> None:
    if array.shape != shape:
        raise InputError(f"'{name}' does not match the other inputs",
                         expected=f"shape {shape}", got=f"shape {array.shape}")


def cosine_distance_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``1 - cos(a_i, b_j)`` for rows ``a`` [M, D] and ``b`` [N, D]: the distance ReID ranks by."""
    a = _array(a, "a", 2)
    b = _array(b, "b", 2)
    if a.shape[1] != b.shape[1]:
        raise InputError("cannot compare vectors of different sizes",
                         expected=f"b with {a.shape[1]} columns", got=f"shape {b.shape}")
    return 1.0 - l2_normalize(a, refuse_zero="a") @ l2_normalize(b, refuse_zero="b").T

# --- re-identification ---------------------------------------------------------------------------


def _query_blocks(num_q: int, num_g: int) -> Iterator[slice]:
    rows = max(1, _RANK_BLOCK_ELEMENTS // num_g)
    for start in range(0, num_q, rows):
        yield slice(start, min(start + rows, num_q))


def _rank_block(distmat: np.ndarray, q_pids: np.ndarray, q_camids: np.ndarray,
                g_pids: np.ndarray, g_camids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For a block of queries: the 0-based rank of the first true match (-1 if none) and the AP.

    Gallery entries of the query's own pid seen by the query's own camera are dropped from the
    ranking (they are trivially easy); ranks and precisions count only the entries that remain.
    """
    order = np.argsort(distmat, axis=1, kind="stable")
    same_pid = g_pids[order] == q_pids[:, None]
    keep = ~(same_pid & (g_camids[order] == q_camids[:, None]))
    hit = same_pid & keep
    kept_position = np.cumsum(keep, axis=1)  # 1-based rank among kept entries
    hits_so_far = np.cumsum(hit, axis=1)
    num_rel = hits_so_far[:, -1]
    precision = np.divide(hits_so_far, kept_position, out=np.zeros(hit.shape), where=hit)
    average_precision = precision.sum(axis=1) / np.maximum(num_rel, 1)
    first_column = np.argmax(hit, axis=1)
    first_rank = kept_position[np.arange(len(order)), first_column] - 1
    return np.where(num_rel > 0, first_rank, -1), average_precision


def evaluate_rank(distmat: np.ndarray, q_pids: np.ndarray, g_pids: np.ndarray,
                  q_camids: np.ndarray, g_camids: np.ndarray,
                  max_rank: int = 50) -> tuple[np.ndarray, float]:
    """CMC curve and mAP under the Market-1501 protocol.

    Protocol: each query ranks the gallery by ascending distance, after removing the gallery
    entries that have the query's pid *and* its camera id. A query with no true match left is
    skipped. ``cmc[r]`` is the fraction of the remaining (valid) queries whose first true match is
    within the top ``r + 1``; the AP of a query is the mean, over its true matches, of the
    precision at each match's rank; mAP is the mean AP over valid queries. The curve has
    ``min(max_rank, num_gallery)`` points. Matches torchreid's ``eval_market1501``.

    Raises InputError on shape mismatches or when no query has a true match in the gallery.
    """
    distmat = _array(distmat, "distmat", 2, None)  # ranking needs no float64 copy
    num_q, num_g = distmat.shape
    q_pids, q_camids = _array(q_pids, "q_pids", 1, None), _array(q_camids, "q_camids", 1, None)
    g_pids, g_camids = _array(g_pids, "g_pids", 1, None), _array(g_camids, "g_camids", 1, None)
    for array, name, size in ((q_pids, "q_pids", num_q), (q_camids, "q_camids", num_q),
                              (g_pids, "g_pids", num_g), (g_camids, "g_camids", num_g)):
        _require_shape(array, name, (size,))
    if num_q == 0 or num_g == 0:
        raise InputError("distmat is empty", expected="at least one query and one gallery entry",
                         got=f"shape {distmat.shape}")
    if max_rank < 1:
        raise InputError("max_rank must be at least 1", got=str(max_rank))

    results = [_rank_block(distmat[rows], q_pids[rows], q_camids[rows], g_pids, g_camids)
               for rows in _query_blocks(num_q, num_g)]
    first_rank = np.concatenate([r[0] for r in results])
    average_precision = np.concatenate([r[1] for r in results])
    valid = first_rank >= 0
    if not valid.any():
        raise InputError("no query has a true match in the gallery (after removing same-camera "
                         "matches), so CMC and mAP are undefined",
                         fix="check that query and gallery pids and camera ids are aligned")
    curve_length = min(max_rank, num_g)
    first_hits = np.bincount(first_rank[valid], minlength=num_g)[:curve_length]
    cmc = np.cumsum(first_hits) / valid.sum()
    return cmc, float(average_precision[valid].mean())

# --- faces ----------------------------------------------------------------------------------------


def identification_top1(probe_emb: np.ndarray, probe_ids: np.ndarray,
                        gallery_emb: np.ndarray, gallery_ids: np.ndarray) -> float:
    """Closed-set rank-1 identification rate.

    Embeddings are L2-normalised; each probe takes the identity of the gallery vector with the
    highest cosine similarity, and the result is the fraction of probes whose identity is right.
    """
    probe_emb = _array(probe_emb, "probe_emb", 2)
    gallery_emb = _array(gallery_emb, "gallery_emb", 2)
    probe_ids = _array(probe_ids, "probe_ids", 1, None)
    gallery_ids = _array(gallery_ids, "gallery_ids", 1, None)
    _require_shape(probe_ids, "probe_ids", probe_emb.shape[:1])
    _require_shape(gallery_ids, "gallery_ids", gallery_emb.shape[:1])
    if probe_emb.shape[0] == 0 or gallery_emb.shape[0] == 0:
        raise InputError("identification needs at least one probe and one gallery vector",
                         got=f"{probe_emb.shape[0]} probes, {gallery_emb.shape[0]} gallery")
    similarity = 1.0 - cosine_distance_matrix(probe_emb, gallery_emb)
    predicted = gallery_ids[np.argmax(similarity, axis=1)]
    return float(np.mean(predicted == probe_ids))

# --- keypoints ------------------------------------------------------------------------------------


def _joint_errors(pred: np.ndarray, gt: np.ndarray,
                  visible: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean error per joint [N, K] and the visibility mask, after checking shapes."""
    pred = _array(pred, "pred", 3)
    gt = _array(gt, "gt", 3)
    visible = _array(visible, "visible", 2, bool)
    if pred.shape[-1] != 2:
        raise InputError("keypoints must be (x, y) pairs", expected="shape [N, K, 2]",
                         got=f"shape {pred.shape}")
    _require_shape(gt, "gt", pred.shape)
    _require_shape(visible, "visible", pred.shape[:2])
    if not visible.any():
        raise InputError("no visible joint to evaluate", fix="check the visibility mask")
    return np.linalg.norm(pred - gt, axis=-1), visible


def _per_sample(values: object, name: str, n: int) -> np.ndarray:
    array = _array(values, name, 1)
    _require_shape(array, name, (n,))
    if np.any(array <= 0):
        raise InputError(f"'{name}' must be positive for every sample",
                         got=f"min {float(array.min())}")
    return array


def pck(pred: np.ndarray, gt: np.ndarray, visible: np.ndarray, boxes: np.ndarray,
        alpha: float = 0.1) -> float:
    """Percentage of correct keypoints, as a fraction in [0, 1].

    ``pred``/``gt`` are [N, K, 2] (x, y), ``visible`` [N, K] bool, ``boxes`` [N, 4] as
    (x1, y1, x2, y2).
    A visible joint is correct when its distance to the ground truth is at most
    ``alpha * max(box width, box height)`` of its sample; the result averages over visible joints.
    """
    errors, visible = _joint_errors(pred, gt, visible)
    boxes = _array(boxes, "boxes", 2)
    _require_shape(boxes, "boxes", (errors.shape[0], 4))
    size = _per_sample(np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]),
                       "box size", errors.shape[0])
    correct = errors <= alpha * size[:, None]
    return float(correct[visible].mean())


def nme(pred: np.ndarray, gt: np.ndarray, visible: np.ndarray, norm: np.ndarray) -> float:
    """Normalised mean error: mean over visible joints of ``distance / norm[n]`` of their sample.

    ``norm`` [N] is the per-sample normaliser (e.g. inter-ocular distance or box diagonal).
    """
    errors, visible = _joint_errors(pred, gt, visible)
    norm = _per_sample(norm, "norm", errors.shape[0])
    return float((errors / norm[:, None])[visible].mean())
