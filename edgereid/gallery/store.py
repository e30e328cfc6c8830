"""A persistent identity gallery: L2-normalised embeddings bound to the model card that made them.

Embeddings from different models live in different spaces and cannot be compared, so a gallery
remembers the card it was built with and refuses to open with an incompatible one. Search is exact
cosine top-k at the identity level (:mod:`edgereid.gallery.search`); files are written atomically with
a checksum (:mod:`edgereid.gallery.file_format`). Imports NumPy only; FAISS is imported when first used.
"""

from __future__ import annotations

import functools
import logging
import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgereid.card import AcceptThreshold, ModelCard
from edgereid.errors import GalleryError, InputError, ModelCardError, require
from edgereid.gallery.file_format import read_gallery_file, write_gallery_file
from edgereid.gallery.search import (APPROX_MIN_VECTORS, IdentityStore, approximate_index, approximate_top,
                                     exact_top, faiss_importable, faiss_top)
from edgereid.ops.postprocess import l2_normalize
from edgereid.ops.scores import tar_at_far

log = logging.getLogger("edgereid.gallery")


@dataclass(frozen=True)
class Match:
    """Top-1 answer for one query.

    ``identity`` is None when the best score is not above the accept threshold (an unknown
    person); ``best_identity`` is the closest identity all the same ("" for an empty gallery).
    """

    identity: str | None
    score: float
    best_identity: str


def _incompatible(where: str, stored: ModelCard, card: ModelCard) -> GalleryError:
    return GalleryError(
        f"{where} was built with model '{stored.name}' (checkpoint sha256 "
        f"{stored.provenance.checkpoint_sha256 or 'unknown'}); its embeddings cannot be compared "
        f"with those of model '{card.name}' (checkpoint sha256 "
        f"{card.provenance.checkpoint_sha256 or 'unknown'})",
        expected=f"embedding space {stored.embedding_space()}",
        got=f"embedding space {card.embedding_space()}",
        fix="re-enroll with the new model: create Gallery(new_card), call enroll(identity, "
            "embeddings) for every identity with embeddings computed by the new model, then save()")


def unit_rows(embeddings: np.ndarray, card: ModelCard, what: str) -> np.ndarray:
    """[D] or [N, D] finite, non-zero embeddings of ``card``'s space as unit float32 rows [N, D]."""
    array = np.asarray(embeddings, dtype=np.float64)
    if array.ndim == 1:
        array = array[None]
    if array.ndim != 2 or array.shape[1] != card.embedding_dim:
        raise InputError(f"{what} have the wrong shape for model '{card.name}'",
                         expected=f"[{card.embedding_dim}] or [N, {card.embedding_dim}]", got=f"{array.shape}")
    if not np.all(np.isfinite(array)):
        raise InputError(f"{what} contain NaN or inf", fix="check the model's output")
    return l2_normalize(array, refuse_zero=what).astype(np.float32)


def decide(best: str, score: float, threshold: float | None) -> Match:
    """The :class:`Match` of a query whose best identity is ``best`` ("" for none) at ``score``."""
    accepted = bool(best) and (threshold is None or score > threshold)
    return Match(identity=best if accepted else None, score=score, best_identity=best)


def _locked(method):
    """Run a Gallery method under the gallery's lock (the pipeline worker searches while apps enroll)."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with self._lock:
            return method(self, *args, **kwargs)

    return wrapper


class Gallery:
    """Enrolled identities of one embedding space, searched by cosine similarity. Thread-safe."""

    def __init__(self, card: ModelCard, *, threshold: float | None = None,
                 use_faiss: bool | None = None) -> None:
        """``threshold`` defaults to the card's accept threshold (None: never reject).

        ``use_faiss``: True forces exact FAISS search (``IndexFlatIP``), False forces exact NumPy search, None
        (the default) searches exactly with NumPy, and from ``APPROX_MIN_VECTORS`` vectors on (when FAISS is
        installed) with the approximate index whose measured recall@1 there was 1.000
        (:mod:`edgereid.gallery.search`).
        """
        if card.embedding_dim <= 0:
            raise ModelCardError(f"model '{card.name}' declares no embedding, so it cannot fill a "
                                 "gallery", expected="embedding_dim > 0",
                                 got=str(card.embedding_dim), fix="use a reid or face model's card")
        if use_faiss:
            require("faiss", "faiss", "FAISS gallery search")
        self._lock = threading.RLock()
        self._card = card
        self._use_faiss = use_faiss
        default = card.accept_threshold.score if card.accept_threshold is not None else None
        self.threshold = default if threshold is None else threshold
        self._pending: list[tuple[str, np.ndarray]] = []
        self._set_store(IdentityStore.empty(card.embedding_dim))

    # --- state -----------------------------------------------------------------------------------

    @property
    def card(self) -> ModelCard:
        return self._card

    def check_compatible(self, card: ModelCard, where: str = "the gallery") -> None:
        """Refuse to compare this gallery with embeddings of another model (a :class:`GalleryError`
        that says how to re-enroll)."""
        if card.embedding_space() != self._card.embedding_space():
            raise _incompatible(where, self._card, card)

    @property
    def dim(self) -> int:
        return self._card.embedding_dim

    @property
    @_locked
    def identities(self) -> list[str]:
        """Enrolled identities, sorted."""
        return list(self._consolidated().identities)

    @_locked
    def counts(self) -> dict[str, int]:
        """Enrolled vectors per identity, in identity order."""
        store = self._consolidated()
        ends = list(store.starts[1:]) + [len(store.labels)]
        return {identity: int(end - start) for identity, start, end in zip(store.identities, store.starts, ends)}

    @property
    @_locked
    def store(self) -> IdentityStore:
        """The enrolled vectors grouped by identity (pending enrolments merged in), for tools and benchmarks
        that search it directly; read-only: enrol and remove through the gallery."""
        return self._consolidated()

    @_locked
    def __len__(self) -> int:
        """Number of enrolled vectors (not identities)."""
        return len(self._store.labels) + sum(len(vectors) for _, vectors in self._pending)

    @property
    def threshold(self) -> float | None:
        """Cosine score a match must exceed to be accepted; None accepts every best match."""
        return self._threshold

    @threshold.setter
    def threshold(self, value: float | None) -> None:
        if value is not None and math.isnan(value):
            raise InputError("accept threshold is NaN", expected="a number or None")
        self._threshold = None if value is None else float(value)

    def _set_store(self, store: IdentityStore) -> None:
        self._store = store
        self._index: Any = None  # FAISS index over the store, built on first use

    def _consolidated(self) -> IdentityStore:
        """The store with pending enrolments merged in (enrol is O(new vectors) until a read)."""
        if self._pending:
            vectors = [self._store.vectors] + [v for _, v in self._pending]
            labels = [self._store.labels] + [np.full(len(v), i) for i, v in self._pending]
            self._pending = []
            self._set_store(IdentityStore.build(np.concatenate(vectors), np.concatenate(labels)))
        return self._store

    def _unit_rows(self, embeddings: np.ndarray, what: str) -> np.ndarray:
        return unit_rows(embeddings, self._card, what)

    # --- enrolment -------------------------------------------------------------------------------

    @_locked
    def enroll(self, identity: str, embeddings: np.ndarray) -> None:
        """Add one or more embeddings ([D] or [N, D]) of ``identity``; they are L2-normalised."""
        if not isinstance(identity, str) or not identity:
            raise InputError("identity must be a non-empty string", got=repr(identity))
        vectors = self._unit_rows(embeddings, "embeddings")
        if len(vectors) == 0:
            raise InputError("no embeddings to enroll", expected="at least one vector")
        self._pending.append((identity, vectors))

    @_locked
    def remove(self, identity: str) -> int:
        """Forget ``identity``; returns how many vectors were removed (0 if it was unknown)."""
        store = self._consolidated()
        keep = store.labels != identity
        removed = int(np.count_nonzero(~keep))
        if removed:
            self._set_store(IdentityStore.build(store.vectors[keep], store.labels[keep]))
        return removed

    @_locked
    def purge(self) -> None:
        """Forget every identity."""
        self._pending = []
        self._set_store(IdentityStore.empty(self.dim))

    # --- search ----------------------------------------------------------------------------------

    @_locked
    def search(self, queries: np.ndarray, k: int = 5) -> tuple[list[list[str]], np.ndarray]:
        """Identity-level top-``k`` for each query ([D] or [Q, D]).

        An identity's score is the highest cosine similarity over its vectors. Returns ``ids``,
        ``Q`` lists of at most ``k`` identities, best first, and ``scores`` [Q, k] float32 aligned
        with them, padded with -inf where the gallery holds fewer than ``k`` identities.
        """
        if k < 1:
            raise InputError("k must be at least 1", got=str(k))
        unit = self._unit_rows(queries, "queries")
        store = self._consolidated()
        codes, top = self._top_identities(store, unit, min(k, len(store.identities)))
        ids = [[store.identities[code] for code in row] for row in codes.tolist()]
        scores = np.full((len(unit), k), -np.inf, dtype=np.float32)
        scores[:, :top.shape[1]] = top
        return ids, scores

    def match(self, queries: np.ndarray) -> list[Match]:
        """Top-1 identity of each query, None where the score is not above the threshold."""
        ids, scores = self.search(queries, k=1)
        return [decide(row[0] if row else "", float(score), self._threshold) for row, score in zip(ids, scores[:, 0])]

    def _top_identities(self, store: IdentityStore, queries: np.ndarray,
                        k: int) -> tuple[np.ndarray, np.ndarray]:
        """Identity codes [Q, k] and scores [Q, k], best first."""
        if k == 0:
            return np.empty((len(queries), 0), np.int64), np.empty((len(queries), 0), np.float32)
        if self._use_faiss:
            if self._index is None:
                faiss = require("faiss", "faiss", "FAISS gallery search")
                self._index = faiss.IndexFlatIP(self.dim)
                self._index.add(store.vectors)
            return faiss_top(self._index, store, queries, k)
        if self.approximate:
            if self._index is None:
                self._index = approximate_index(store.vectors)
            return approximate_top(self._index, store, queries, k)
        return exact_top(store, queries, k)

    @property
    @_locked
    def approximate(self) -> bool:
        """Whether searches use the approximate index (the default from ``APPROX_MIN_VECTORS`` vectors on)."""
        return (self._use_faiss is None and len(self._consolidated().labels) >= APPROX_MIN_VECTORS
                and faiss_importable())

    # --- threshold -------------------------------------------------------------------------------

    def calibrate(self, genuine_scores: np.ndarray, impostor_scores: np.ndarray,
                  far: float) -> AcceptThreshold:
        """Set the accept threshold for a target false-accept rate and return it.

        The threshold is the smallest score that at most ``far`` of the impostor scores exceed
        (:func:`edgereid.ops.scores.threshold_at_far`); the true-accept rate it gives on the
        genuine scores is logged so the trade-off is visible.
        """
        tar, threshold = tar_at_far(genuine_scores, impostor_scores, far)
        log.info("gallery threshold %.4f at FAR %g gives TAR %.4f", threshold, far, tar)
        self.threshold = threshold
        return AcceptThreshold(score=threshold, far=far)

    # --- persistence -----------------------------------------------------------------------------

    @_locked
    def save(self, path: str | Path) -> Path:
        """Write the gallery atomically to ``path`` (one .npz with the card and a checksum)."""
        store = self._consolidated()
        return write_gallery_file(path, store.vectors, store.labels, self._card, self._threshold)

    @classmethod
    def open(cls, uri: str | Path, card: ModelCard | None = None, *, use_faiss: bool | None = None) -> Any:
        """A gallery by where it lives: a ``.npz`` file written by :meth:`save` (:meth:`load`), or a shared
        Milvus collection, ``milvus://host:port/collection`` or a Milvus Lite ``.db`` file
        (:class:`edgereid.gallery.milvus.MilvusGallery`, created with ``card`` when it does not exist yet).
        Either is refused when ``card`` is of another embedding space."""
        from edgereid.gallery.milvus import MilvusGallery, is_milvus_uri

        if is_milvus_uri(uri):
            return MilvusGallery(uri, card)
        return cls.load(uri, card, use_faiss=use_faiss)

    @classmethod
    def load(cls, path: str | Path, card: ModelCard | None = None, *,
             use_faiss: bool | None = None) -> "Gallery":
        """Open a gallery written by :meth:`save`.

        With ``card``, the gallery is refused unless it shares the stored card's embedding space
        (same model name, task, dimension, checkpoint hash and input spec), and ``card`` becomes the
        gallery's card. The saved threshold is restored.
        """
        path = Path(path)
        stored, vectors, labels, threshold = read_gallery_file(path)
        if card is not None and card.embedding_space() != stored.embedding_space():
            raise _incompatible(f"gallery {path}", stored, card)
        gallery = cls(card or stored, use_faiss=use_faiss)
        gallery.threshold = threshold
        gallery._set_store(IdentityStore.build(vectors, labels))
        return gallery
