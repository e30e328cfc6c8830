"""Face verification accuracy as insightface reports it on LFW, CFP-FP, AgeDB-30, CALFW and CPLFW.

The pairs are cut into 10 contiguous folds (unshuffled, as insightface's ``KFold(n_splits=10, shuffle=False)``);
for each fold the cosine threshold that maximises accuracy on the other nine is applied to it; the result is the
mean and standard deviation of the ten fold accuracies, with the thresholds. Embeddings are L2-normalised here
(insightface's evaluation adds the embedding of the flipped image first; pass that sum if you want the same).
"""

from __future__ import annotations

import numpy as np

from edgereid.errors import InputError
from edgereid.ops.postprocess import l2_normalize


def _accuracy(similarity: np.ndarray, same: np.ndarray, threshold: float) -> float:
    return float(((similarity >= threshold) == same).mean())


def verification_accuracy(first: np.ndarray, second: np.ndarray, same: np.ndarray,
                          folds: int = 10) -> dict[str, float | list[float]]:
    """Mean and standard deviation of the ``folds`` fold accuracies (and each fold's threshold) for pairs
    ``(first[i], second[i])`` labelled ``same[i]``."""
    first, second, same = np.asarray(first, np.float32), np.asarray(second, np.float32), np.asarray(same, bool)
    if first.shape != second.shape or first.ndim != 2 or len(same) != len(first) or len(same) < folds:
        raise InputError("verification needs two [N, D] embedding arrays and N same-person flags, N >= folds",
                         got=f"{first.shape}, {second.shape}, {same.shape}, {folds} folds")
    similarity = (l2_normalize(first) * l2_normalize(second)).sum(axis=1)
    candidates = np.unique(np.concatenate([similarity, [similarity.max() + 1e-6]]))
    accuracies, thresholds = [], []
    for test in np.array_split(np.arange(len(same)), folds):
        train = np.setdiff1d(np.arange(len(same)), test)
        best = max(candidates, key=lambda t: _accuracy(similarity[train], same[train], t))
        thresholds.append(float(best))
        accuracies.append(_accuracy(similarity[test], same[test], best))
    return {"accuracy": float(np.mean(accuracies)), "std": float(np.std(accuracies)), "thresholds": thresholds}
