"""Model outputs to public results: unit embeddings.

:func:`l2_normalize` is the one NumPy normalisation of the project (runtime, gallery, metrics).
Keypoint coordinates map back to frame pixels through :func:`edgereid.ops.geometry.points_to_frame`, and
to named joints through :func:`edgereid.ops.readout.apply_readout`.
"""

from __future__ import annotations

import numpy as np

from edgereid.errors import InputError


def l2_normalize(vectors: np.ndarray, *, refuse_zero: str | None = None, eps: float = 1e-12) -> np.ndarray:
    """Rows scaled to unit length along the last axis (float64 stays float64, anything else float32).
    A zero row has no direction. By default it stays zero (a model output passes through unchanged, so
    its score against anything is 0). With ``refuse_zero`` set to the array's name, a zero or
    non-finite row is an :class:`InputError` naming it: what galleries and metrics need, since a
    cosine with such a row means nothing.
    """
    vectors = np.asarray(vectors)
    vectors = vectors if vectors.dtype == np.float64 else vectors.astype(np.float32, copy=False)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    if refuse_zero is not None:
        bad = ~np.isfinite(norms) | (norms <= eps)
        if bad.any():
            raise InputError(f"'{refuse_zero}' contains all-zero or non-finite vectors, which have no cosine "
                             "similarity", got=f"{int(bad.sum())} such rows",
                             fix="check the model outputs that produced them")
    return vectors / np.maximum(norms, eps)


