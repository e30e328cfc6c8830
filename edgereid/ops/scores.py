"""Verification scores: accept thresholds at a false-accept rate and the true-accept rate they give.

Scores are cosine similarities where higher means "more alike"; a pair is *accepted* when its score is
strictly greater than the threshold. Shared by the gallery (thresholds stored with it), the
calibration command and the evaluation reports.
"""

from __future__ import annotations

import math

import numpy as np

from edgereid.errors import InputError


def checked_array(values: object, name: str, ndim: int, dtype: type | None = np.float64) -> np.ndarray:
    """``values`` as an array of ``ndim`` dimensions, or an InputError naming the argument."""
    array = np.asarray(values, dtype=dtype)
    if array.ndim != ndim:
        raise InputError(f"'{name}' has the wrong number of dimensions",
                         expected=f"{ndim}-D array", got=f"shape {array.shape}")
    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        raise InputError(f"'{name}' contains NaN or inf", fix="check the model outputs or inputs")
    return array


def _scores(values: object, name: str) -> np.ndarray:
    scores = checked_array(values, name, 1)
    if scores.size == 0:
        raise InputError(f"'{name}' is empty", expected="at least one score")
    return scores


def _check_far(far: float) -> None:
    if not 0.0 <= far <= 1.0:
        raise InputError("false-accept rate must be a fraction", expected="0 <= far <= 1",
                         got=str(far))


def threshold_at_far(impostor_scores: np.ndarray, far: float) -> float:
    """Smallest threshold at which at most ``far`` of the impostor scores are accepted.

    A score is accepted when strictly greater than the threshold. With ``n`` impostors, at most
    ``m = floor(far * n)`` of them may be accepted, so the threshold is the ``(m + 1)``-th largest
    impostor score; if every impostor may be accepted (``m == n``) it is ``-inf``.
    """
    scores = _scores(impostor_scores, "impostor_scores")
    _check_far(far)
    n = scores.size
    allowed = min(math.floor(far * n), n)
    # far * n is rounded; settle on the largest count m with m / n <= far exactly as stated.
    while allowed < n and (allowed + 1) / n <= far:
        allowed += 1
    while allowed > 0 and allowed / n > far:
        allowed -= 1
    if allowed == n:
        return float("-inf")
    descending = np.sort(scores)[::-1]
    return float(descending[allowed])


def tar_at_far(genuine_scores: np.ndarray, impostor_scores: np.ndarray,
               far: float) -> tuple[float, float]:
    """True-accept rate at the :func:`threshold_at_far` threshold; returns ``(tar, threshold)``.

    TAR is the fraction of genuine scores strictly greater than the threshold.
    """
    genuine = _scores(genuine_scores, "genuine_scores")
    threshold = threshold_at_far(impostor_scores, far)
    return float(np.mean(genuine > threshold)), threshold
