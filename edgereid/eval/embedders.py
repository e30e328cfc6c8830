"""Crops -> unit embeddings, for the benchmarks that score models of different kinds side by side."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from edgereid.card import InputSpec
from edgereid.ops.postprocess import l2_normalize
from edgereid.ops.preprocess import normalise_batch


@dataclass(frozen=True)
class ImageEmbedder:
    """uint8 BGR crops ``[N, H, W, 3]`` cut for ``spec`` -> unit embeddings."""

    spec: InputSpec
    embed: Callable[[np.ndarray], np.ndarray]

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        return np.concatenate([self.embed(crops[i:i + 64]) for i in range(0, len(crops), 64)])


def onnx_embedder(path: str | Path) -> ImageEmbedder:
    """An image embedder from a ReID ONNX model with a card (ONNX Runtime)."""
    from edgereid.runtime.backends import load_backend

    backend = load_backend(path)
    name = backend.card.output("embedding").name

    def embed(crops: np.ndarray) -> np.ndarray:
        return l2_normalize(backend.infer(normalise_batch(crops, backend.card.input))[name])

    return ImageEmbedder(backend.card.input, embed)
