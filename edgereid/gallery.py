"""A persistent identity gallery: L2-normalised embeddings bound to the model card that made them.

Embeddings from different models live in different spaces and cannot be compared, so a gallery
remembers the card it was built with and refuses to open with an incompatible one. Search is
exact cosine top-k at the identity level (an identity scores the best of its vectors): one matrix
product and an ``argpartition``, or a FAISS ``IndexFlatIP`` for very large galleries, which gives
the same answer. Files are written atomically with a checksum, so a crash mid-save leaves the
previous file intact and a damaged file is detected instead of silently mis-matching.

Imports NumPy only; FAISS is imported when first used.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import io
import logging
import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgereid.card import AcceptThreshold, ModelCard
from edgereid.errors import GalleryError, InputError, ModelCardError, require
from edgereid.eval.metrics import l2_normalize, tar_at_far
from edgereid.fileio import atomic_write_bytes

FORMAT_VERSION = 1
FAISS_AUTO_MIN_VECTORS = 50_000
# Exact search scores queries in blocks so that the [block, vectors] matrix stays near this size.
_SEARCH_BLOCK_ELEMENTS = 1 << 24
_REQUIRED_KEYS = ("vectors", "labels", "card", "threshold", "format_version", "checksum")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Match:
    """Top-1 answer for one query.

    ``identity`` is None when the best score is not above the accept threshold (an unknown
    person); ``best_identity`` is the closest identity all the same ("" for an empty gallery).
    """

    identity: str | None
    score: float
    best_identity: str


@dataclass(frozen=True)
class _Store:
    """Enrolled vectors grouped by identity, identities in sorted order.

    Grouping lets identity-level scores be taken with one ``np.maximum.reduceat`` over ``starts``.
    """

    vectors: np.ndarray  # [N, D] float32, unit rows
    labels: np.ndarray  # [N] str, sorted
    identities: tuple[str, ...]
    starts: np.ndarray  # [I] first row of each identity
    codes: np.ndarray  # [N] index into identities of each row

    @classmethod
    def build(cls, vectors: np.ndarray, labels: np.ndarray) -> "_Store":
        order = np.argsort(labels, kind="stable")
        labels = labels[order]
        identities, starts, codes = np.unique(labels, return_index=True, return_inverse=True)
        return cls(np.ascontiguousarray(vectors[order], dtype=np.float32), labels,
                   tuple(identities.tolist()), starts, codes.reshape(-1))

    @classmethod
    def empty(cls, dim: int) -> "_Store":
        return cls.build(np.empty((0, dim), np.float32), np.empty(0, dtype=str))


@functools.cache
def _faiss_importable() -> bool:
    return importlib.util.find_spec("faiss") is not None


def _top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Column indices and values of the ``k`` largest entries of each row, best first.

    Ties are broken towards the lower column index.
    """
    if k < scores.shape[1]:
        columns = np.sort(np.argpartition(-scores, k - 1, axis=1)[:, :k], axis=1)
    else:
        columns = np.broadcast_to(np.arange(scores.shape[1]), scores.shape)
    values = np.take_along_axis(scores, columns, axis=1)
    order = np.argsort(-values, axis=1, kind="stable")
    return np.take_along_axis(columns, order, axis=1), np.take_along_axis(values, order, axis=1)


def _first_distinct(codes: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """From vectors ranked best first, the first ``k`` distinct identities and their best scores."""
    unique, first = np.unique(codes, return_index=True)
    keep = np.argsort(first)[:k]
    return unique[keep], scores[first[keep]]


def _digest(arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 over every array's name, dtype, shape and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _damaged(path: Path, detail: str) -> GalleryError:
    return GalleryError(
        f"gallery file {path} is damaged (truncated or corrupted): {detail}",
        fix="restore the previous good copy of the file (saves are atomic, so a copy made before "
            "the damage is intact), or create a new Gallery, re-enroll the identities and save it")


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every array of a gallery file, with damage reported as GalleryError."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise GalleryError(f"no gallery file at {path}", fix="check the path, or create a "
                           "Gallery, enroll and save() it") from None
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}
    except Exception as exc:  # zipfile, zlib and NumPy raise many types for a broken archive
        raise _damaged(path, f"{type(exc).__name__}: {exc}") from exc


def _check_integrity(arrays: dict[str, np.ndarray], path: Path) -> None:
    missing = [key for key in _REQUIRED_KEYS if key not in arrays]
    if missing:
        raise _damaged(path, f"entries {missing} are missing")
    payload = {key: value for key, value in arrays.items() if key != "checksum"}
    if _digest(payload) != str(arrays["checksum"]):
        raise _damaged(path, "the checksum does not match the contents")
    if int(arrays["format_version"]) > FORMAT_VERSION:
        raise GalleryError(f"gallery file {path} was written by a newer edgereid",
                           expected=f"format version <= {FORMAT_VERSION}",
                           got=str(int(arrays["format_version"])), fix="upgrade edgereid")


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

        ``use_faiss``: True forces FAISS, False forces exact NumPy search, None picks FAISS when it
        is installed and the gallery holds at least ``FAISS_AUTO_MIN_VECTORS`` vectors.
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
        self._set_store(_Store.empty(card.embedding_dim))

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

    def _set_store(self, store: _Store) -> None:
        self._store = store
        self._index: Any = None  # FAISS index over the store, built on first use

    def _consolidated(self) -> _Store:
        """The store with pending enrolments merged in (enrol is O(new vectors) until a read)."""
        if self._pending:
            vectors = [self._store.vectors] + [v for _, v in self._pending]
            labels = [self._store.labels] + [np.full(len(v), i) for i, v in self._pending]
            self._pending = []
            self._set_store(_Store.build(np.concatenate(vectors), np.concatenate(labels)))
        return self._store

    def _unit_rows(self, embeddings: np.ndarray, what: str) -> np.ndarray:
        """[D] or [N, D] finite, non-zero embeddings as unit float32 rows [N, D]."""
        array = np.asarray(embeddings, dtype=np.float64)
        if array.ndim == 1:
            array = array[None]
        if array.ndim != 2 or array.shape[1] != self.dim:
            raise InputError(f"{what} have the wrong shape for model '{self._card.name}'",
                             expected=f"[{self.dim}] or [N, {self.dim}]", got=f"{array.shape}")
        if not np.all(np.isfinite(array)):
            raise InputError(f"{what} contain NaN or inf", fix="check the model's output")
        return l2_normalize(array, what).astype(np.float32)

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
            self._set_store(_Store.build(store.vectors[keep], store.labels[keep]))
        return removed

    @_locked
    def purge(self) -> None:
        """Forget every identity."""
        self._pending = []
        self._set_store(_Store.empty(self.dim))

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
        return [self._decide(row[0] if row else "", float(score))
                for row, score in zip(ids, scores[:, 0])]

    def _decide(self, best: str, score: float) -> Match:
        accepted = bool(best) and (self._threshold is None or score > self._threshold)
        return Match(identity=best if accepted else None, score=score, best_identity=best)

    def _top_identities(self, store: _Store, queries: np.ndarray,
                        k: int) -> tuple[np.ndarray, np.ndarray]:
        """Identity codes [Q, k] and scores [Q, k], best first."""
        if k == 0:
            return np.empty((len(queries), 0), np.int64), np.empty((len(queries), 0), np.float32)
        if self._faiss_enabled(store):
            return self._faiss_top(store, queries, k)
        return self._exact_top(store, queries, k)

    def _faiss_enabled(self, store: _Store) -> bool:
        if self._use_faiss is None:
            return len(store.labels) >= FAISS_AUTO_MIN_VECTORS and _faiss_importable()
        return self._use_faiss

    @staticmethod
    def _exact_top(store: _Store, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """One matrix product, a max per identity and an argpartition, in blocks of queries."""
        codes = np.empty((len(queries), k), np.int64)
        scores = np.empty((len(queries), k), np.float32)
        rows = max(1, _SEARCH_BLOCK_ELEMENTS // len(store.labels))
        for start in range(0, len(queries), rows):
            block = slice(start, start + rows)
            similarity = queries[block] @ store.vectors.T
            per_identity = np.maximum.reduceat(similarity, store.starts, axis=1)
            codes[block], scores[block] = _top_k(per_identity, k)
        return codes, scores

    def _faiss_top(self, store: _Store, queries: np.ndarray,
                   k: int) -> tuple[np.ndarray, np.ndarray]:
        """Vector-level FAISS search, deepened until each query has seen ``k`` distinct identities.

        The first occurrence of an identity in a best-first vector ranking carries its best score,
        so the first ``k`` distinct identities are exactly the identity-level top-``k``.
        """
        if self._index is None:
            faiss = require("faiss", "faiss", "FAISS gallery search")
            self._index = faiss.IndexFlatIP(self.dim)
            self._index.add(store.vectors)
        codes = np.empty((len(queries), k), np.int64)
        scores = np.empty((len(queries), k), np.float32)
        todo = np.arange(len(queries))
        depth = min(len(store.labels), 4 * k)
        while todo.size:
            similarity, rows = self._index.search(queries[todo], depth)
            complete = np.zeros(len(todo), bool)
            for j, (query, row, sims) in enumerate(zip(todo, rows, similarity)):
                found, best = _first_distinct(store.codes[row], sims, k)
                if len(found) == k:
                    codes[query], scores[query], complete[j] = found, best, True
            todo = todo[~complete]
            depth = min(len(store.labels), 2 * depth)
        return codes, scores

    # --- threshold -------------------------------------------------------------------------------

    def calibrate(self, genuine_scores: np.ndarray, impostor_scores: np.ndarray,
                  far: float) -> AcceptThreshold:
        """Set the accept threshold for a target false-accept rate and return it.

        The threshold is the smallest score that at most ``far`` of the impostor scores exceed
        (:func:`edgereid.eval.metrics.threshold_at_far`); the true-accept rate it gives on the
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
        arrays = {
            "vectors": store.vectors,
            "labels": store.labels,
            "card": np.array(self._card.to_json()),
            "threshold": np.array(np.nan if self._threshold is None else self._threshold),
            "format_version": np.array(FORMAT_VERSION),
        }
        arrays["checksum"] = np.array(_digest(arrays))
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        return atomic_write_bytes(path, buffer.getvalue())

    @classmethod
    def load(cls, path: str | Path, card: ModelCard | None = None, *,
             use_faiss: bool | None = None) -> "Gallery":
        """Open a gallery written by :meth:`save`.

        With ``card``, the gallery is refused unless it shares the stored card's embedding space
        (same model name, task, dimension, checkpoint hash and input spec), and ``card`` becomes the
        gallery's card. The saved threshold is restored.
        """
        path = Path(path)
        arrays = _read_arrays(path)
        _check_integrity(arrays, path)
        stored = ModelCard.from_json(str(arrays["card"]))
        if card is not None and card.embedding_space() != stored.embedding_space():
            raise _incompatible(f"gallery {path}", stored, card)
        gallery = cls(card or stored, use_faiss=use_faiss)
        vectors, labels = arrays["vectors"], arrays["labels"]
        if vectors.shape != (len(labels), gallery.dim) or labels.ndim != 1:
            raise _damaged(path, f"vectors {vectors.shape} and labels {labels.shape} disagree")
        threshold = float(arrays["threshold"])
        gallery.threshold = None if math.isnan(threshold) else threshold
        gallery._set_store(_Store.build(vectors, labels))
        return gallery
