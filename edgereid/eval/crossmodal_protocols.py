"""Scoring protocols of the real cross-modal benchmarks (readers: :mod:`edgereid.data.crossmodal_sets`).

* SYSU-MM01, as its released evaluation (and AGW, DEEN and later code after it): gallery images of the query's
  identity from camera 2 are ignored for queries from camera 3 (the two share a location); the CMC curve counts
  identities in the order they first appear in the ranking (several gallery images of one identity are one
  candidate); mAP is over every kept gallery image. Results are the mean over trials (10 in the papers).
* LLCM, as its release's evaluation: the same, ignoring gallery images of the query's identity from the query's
  own camera number.
* RegDB and PKU-Sketch: the standard ranking, nothing removed (query and gallery are different modalities by
  construction).
* Text-to-person (CUHK-PEDES, ICFG-PEDES, RSTPReid): each caption ranks the gallery images by cosine; R@k is the
  share of captions with an image of their identity in the top k, and mAP as usual.

Features are L2-normalised here; ranking is by descending cosine.
"""

from __future__ import annotations

import numpy as np

from edgereid.errors import InputError
from edgereid.ops.postprocess import l2_normalize


def _ranked(query: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    if len(query) == 0 or len(gallery) == 0:
        raise InputError("nothing to rank", expected="at least one query and one gallery feature",
                         got=f"{len(query)} queries, {len(gallery)} gallery")
    unit = [l2_normalize(np.asarray(f, np.float32)) for f in (query, gallery)]
    return np.argsort(-(unit[0] @ unit[1].T), axis=1, kind="stable")


def _average_precision(hits: np.ndarray) -> float:
    """AP of one ranked list of relevant (True) and irrelevant entries."""
    found = np.cumsum(hits)
    return float((found[hits] / (np.flatnonzero(hits) + 1)).mean()) if hits.any() else 0.0


def sysu_metrics(query: np.ndarray, gallery: np.ndarray, q_pids: np.ndarray, g_pids: np.ndarray,
                 q_cams: np.ndarray, g_cams: np.ndarray, max_rank: int = 20) -> dict[str, float]:
    """Rank-1/5/10/20 and mAP of one SYSU-MM01 trial (cameras 1-based, as the dataset numbers them)."""
    return _identity_metrics(query, gallery, q_pids, g_pids, q_cams, g_cams, max_rank,
                             lambda q_cam, cams: (q_cam == 3) & (cams == 2))


def llcm_metrics(query: np.ndarray, gallery: np.ndarray, q_pids: np.ndarray, g_pids: np.ndarray,
                 q_cams: np.ndarray, g_cams: np.ndarray, max_rank: int = 20) -> dict[str, float]:
    """LLCM's scoring: as SYSU-MM01's, with the query's identity ignored in the query's own camera (the visible
    and near-infrared images of one camera number come from one place)."""
    return _identity_metrics(query, gallery, q_pids, g_pids, q_cams, g_cams, max_rank,
                             lambda q_cam, cams: cams == q_cam)


def _identity_metrics(query, gallery, q_pids, g_pids, q_cams, g_cams, max_rank, same_place) -> dict[str, float]:
    """CMC over identities in first-appearance order and mAP, ignoring gallery entries of the query's identity
    where ``same_place(query camera, gallery cameras)``."""
    q_pids, g_pids, q_cams, g_cams = (np.asarray(a) for a in (q_pids, g_pids, q_cams, g_cams))
    order = _ranked(query, gallery)
    cmc, aps = np.zeros(max_rank), []
    for row, ranked in enumerate(order):
        keep = ~((g_pids[ranked] == q_pids[row]) & same_place(q_cams[row], g_cams[ranked]))
        kept = g_pids[ranked][keep]
        hits = kept == q_pids[row]
        if not hits.any():
            continue
        _, first = np.unique(kept, return_index=True)
        identities = kept[np.sort(first)]  # each identity once, where it first appears
        position = int(np.flatnonzero(identities == q_pids[row])[0])
        if position < max_rank:
            cmc[position:] += 1
        aps.append(_average_precision(hits))
    if not aps:
        raise InputError("no query has its identity in the gallery", fix="check the trial's gallery")
    cmc /= len(aps)
    return {"rank1": float(cmc[0]), "rank5": float(cmc[4]), "rank10": float(cmc[9]), "rank20": float(cmc[19]),
            "mAP": float(np.mean(aps)), "queries": len(aps)}


def ranking_metrics(query: np.ndarray, gallery: np.ndarray, q_pids: np.ndarray, g_pids: np.ndarray,
                    ranks: tuple[int, ...] = (1, 5, 10, 20)) -> dict[str, float]:
    """R@k (a true match within the top k) and mAP with nothing removed: RegDB, and text-to-person retrieval."""
    q_pids, g_pids = np.asarray(q_pids), np.asarray(g_pids)
    hits = g_pids[_ranked(query, gallery)] == q_pids[:, None]
    valid = hits.any(axis=1)
    if not valid.any():
        raise InputError("no query has its identity in the gallery", fix="check the split")
    hits = hits[valid]
    first = hits.argmax(axis=1)
    out = {f"rank{k}": float((first < k).mean()) for k in ranks}
    out.update(mAP=float(np.mean([_average_precision(row) for row in hits])), queries=int(valid.sum()))
    return out


def mean_over_trials(trials: list[dict[str, float]]) -> dict[str, float]:
    """The papers' figure: every metric averaged over the trials."""
    return {key: float(np.mean([t[key] for t in trials])) for key in trials[0]}
