"""Identity-level search: enrolled vectors grouped by identity, exact top-k, FAISS flat, and the approximate
index large galleries switch to.

An identity scores the best of its vectors. Exact search is one matrix product, a max per identity
(``np.maximum.reduceat``) and an ``argpartition``, in blocks of queries; FAISS ``IndexFlatIP`` gives the
same answer. Above :data:`APPROX_MIN_VECTORS` vectors the gallery searches a FAISS 4-bit product-quantisation
fast-scan index (:func:`approximate_index`) for a shortlist and rescores it exactly (:func:`approximate_top`).
Imports NumPy only (FAISS when called).
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass

import numpy as np

# Chosen from `edgereid bench --gallery-sizes 1000,10000,100000` and `--gallery-sizes 1000000` on the CI machine
# (BENCHMARKS.md, "Galleries at scale", 2026-12-06), 32-query top-5 searches of 512-d identity clusters: the
# approximate index had recall@1 1.000 against exact at every size; exact NumPy search took 9 ms at 10,000
# (affordable, and exact), 102 ms at 100,000 and 1.27 s at 1,000,000, where the approximate index took 3.7 ms
# and 19-42 ms (four runs). HNSW (M 32, efSearch 128) had recall@1 0.91 at 100,000 and 0.25 at 1,000,000, and
# IVF 0.31-0.72 at 100,000 in a probe: noise in all 512 dimensions leaves their graphs and cells nothing to
# navigate by, so they are not used.
APPROX_MIN_VECTORS = 100_000
# 16-byte codes (32 sub-quantizers of 4 bits) keep the exact top-1 inside the shortlist (8 bytes did not:
# recall@1 0.59 after rescoring at 1,000,000); the shortlist is rescored with the stored float vectors.
APPROX_SUBQUANTIZERS = 32
APPROX_SHORTLIST = 32
APPROX_TRAIN_VECTORS = 65_536
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


def approximate_index(vectors: np.ndarray, seed: int = 0):
    """A FAISS ``IndexPQFastScan`` (inner product, :data:`APPROX_SUBQUANTIZERS` x 4 bits) over ``vectors``,
    trained on at most :data:`APPROX_TRAIN_VECTORS` of them drawn with ``seed``."""
    from edgereid.errors import require

    faiss = require("faiss", "faiss", "approximate gallery search")
    dim = vectors.shape[1]
    subquantizers = APPROX_SUBQUANTIZERS if dim % APPROX_SUBQUANTIZERS == 0 else 1
    index = faiss.IndexPQFastScan(dim, subquantizers, 4, faiss.METRIC_INNER_PRODUCT)
    sample = np.random.default_rng(seed).choice(len(vectors), min(len(vectors), APPROX_TRAIN_VECTORS), replace=False)
    index.train(vectors[np.sort(sample)])
    index.add(vectors)
    return index


def approximate_top(index, store: IdentityStore, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Identity-level top-``k`` from a shortlist of ``index`` (:func:`approximate_index` over ``store.vectors``),
    rescored exactly with the stored vectors; deepened until each query has seen ``k`` distinct identities."""
    def rescored(batch: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray]:
        _, rows = index.search(batch, depth)
        rows = np.where(rows < 0, 0, rows)  # fewer hits than asked (-1): rescored as row 0, a real candidate
        exact = np.einsum("qd,qkd->qk", batch, store.vectors[rows])
        order = np.argsort(-exact, axis=1, kind="stable")
        return np.take_along_axis(exact, order, axis=1), np.take_along_axis(rows, order, axis=1)

    return _deepened(rescored, store, queries, k, max(APPROX_SHORTLIST, 4 * k))


def faiss_top(index, store: IdentityStore, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Vector-level FAISS search on ``index`` (built over ``store.vectors``), deepened until each query has
    seen ``k`` distinct identities.

    The first occurrence of an identity in a best-first vector ranking carries its best score, so the
    first ``k`` distinct identities are exactly the identity-level top-``k``.
    """
    return _deepened(index.search, store, queries, k, 4 * k)


def _deepened(search, store: IdentityStore, queries: np.ndarray, k: int,
              depth: int) -> tuple[np.ndarray, np.ndarray]:
    """Run ``search(queries, depth) -> (similarity, rows)`` (best first), doubling ``depth`` for the queries
    that have not yet seen ``k`` distinct identities."""
    codes = np.empty((len(queries), k), np.int64)
    scores = np.empty((len(queries), k), np.float32)
    todo = np.arange(len(queries))
    depth = min(len(store.labels), depth)
    while todo.size:
        similarity, rows = search(queries[todo], depth)
        complete = np.zeros(len(todo), bool)
        for j, (query, row, sims) in enumerate(zip(todo, rows, similarity)):
            found, best = first_distinct(store.codes[row], sims, k)
            if len(found) == k:
                codes[query], scores[query], complete[j] = found, best, True
        todo = todo[~complete]
        depth = min(len(store.labels), 2 * depth)
    return codes, scores
