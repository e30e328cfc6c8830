"""The backend protocol every inference engine implements (ONNX Runtime now; TensorRT, torch later)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from edgereid.card import ModelCard


@runtime_checkable
class Backend(Protocol):
    """Runs a model on a ready NCHW batch.

    ``card`` is read from the artifact itself; ``providers`` names where it runs (e.g. ONNX Runtime's
    execution providers); ``max_batch`` is the largest batch the backend takes in one call (None:
    unbounded); ``infer`` returns every output by the card's output names.
    """

    name: str
    providers: tuple[str, ...]
    card: ModelCard
    max_batch: int | None

    def infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        ...
