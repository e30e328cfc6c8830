"""Identity-level search: enrolled vectors grouped by identity, exact top-k, and the FAISS variant.

An identity scores the best of its vectors. Exact search is one matrix product, a max per identity
(``np.maximum.reduceat``) and an ``argpartition``, in blocks of queries; FAISS ``IndexFlatIP`` gives the
same answer for very large galleries. Imports NumPy only.
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass

import numpy as np

FAISS_AUTO_MIN_VECTORS = 50_000
# Exact search scores queries in blocks so that the [block, vectors] matrix stays near this size.
SEARCH_BLOCK_ELEMENTS = 1 << 24

@dataclass(frozen=True)


class IdentityStore:
    """Enrolled vectors grouped by identity, identities in sorted order.

    Grouping lets identity-level scores be taken with one ``np.maximum.reduceat`` over ``starts``.
    """
    vectors: np.ndarray  # [N, D] float32, unit rows
    labels: np.ndarray  # [N] str, sorted
    identities: tuple[str, ...]
    starts: np.ndarray  # [I] first row of each identity
    codes: np.ndarray  # [N] index into identities of each row

    @classmethod
    def build(cls, vectors: np.ndarray, labels: np.ndarray) -> "IdentityStore":
        order = np.argsort(labels, kind="stable")
        labels = labels[order]
        identities, starts, codes = np.unique(labels, return_index=True, return_inverse=True)
        return cls(np.ascontiguousarray(vectors[order], dtype=np.float32), labels,
                   tuple(identities.tolist()), starts, codes.reshape(-1))

    @classmethod
    def empty(cls, dim: int) -> "IdentityStore":
        return cls.build(np.empty((0, dim), np.float32), np.empty(0, dtype=str))

@functools.cache


def faiss_importable() -> bool:
    return importlib.util.find_spec("faiss") is not None


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
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


def first_distinct(codes: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """From vectors ranked best first, the first ``k`` distinct identities and their best scores."""
    unique, first = np.unique(codes, return_index=True)
    keep = np.argsort(first)[:k]
    return unique[keep], scores[first[keep]]


def exact_top(store: IdentityStore, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Identity codes [Q, k] and scores [Q, k], best first: one matrix product, a max per identity and an
    argpartition, in blocks of queries."""
    codes = np.empty((len(queries), k), np.int64)
    scores = np.empty((len(queries), k), np.float32)
    rows = max(1, SEARCH_BLOCK_ELEMENTS // len(store.labels))
    for start in range(0, len(queries), rows):
        block = slice(start, start + rows)
        similarity = queries[block] @ store.vectors.T
        per_identity = np.maximum.reduceat(similarity, store.starts, axis=1)
        codes[block], scores[block] = top_k(per_identity, k)
    return codes, scores


def faiss_top(index, store: IdentityStore, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Vector-level FAISS search on ``index`` (built over ``store.vectors``), deepened until each query has
    seen ``k`` distinct identities.

    The first occurrence of an identity in a best-first vector ranking carries its best score, so the
    first ``k`` distinct identities are exactly the identity-level top-``k``.
    """
    codes = np.empty((len(queries), k), np.int64)
    scores = np.empty((len(queries), k), np.float32)
    todo = np.arange(len(queries))
    depth = min(len(store.labels), 4 * k)
    while todo.size:
        similarity, rows = index.search(queries[todo], depth)
        complete = np.zeros(len(todo), bool)
        for j, (query, row, sims) in enumerate(zip(todo, rows, similarity)):
            found, best = first_distinct(store.codes[row], sims, k)
            if len(found) == k:
                codes[query], scores[query], complete[j] = found, best, True
        todo = todo[~complete]
        depth = min(len(store.labels), 2 * depth)
    return codes, scores
