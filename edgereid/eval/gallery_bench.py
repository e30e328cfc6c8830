"""Galleries at scale: enrol rate, memory and the latency and recall of a 32-query top-5 search, from a thousand to
a million identities, for each search the gallery can use.

The vectors come from a generator of identity clusters (:func:`identity_clusters`): each identity is a random
unit centre, and its enrolled vector and its queries are independent noisy views of it at cosine ~0.75 to the
centre (so a query meets its own enrolled vector at ~0.56 and a stranger's at ~0 +- 1/sqrt(dim)). Searches:

- ``numpy-exact``: the gallery's exact search (one matrix product in blocks);
- ``faiss-flat``: FAISS ``IndexFlatIP``, exact;
- ``faiss-pq-fastscan``: the gallery's approximate index (4-bit PQ fast scan, shortlist rescored exactly);
- ``faiss-hnsw``: FAISS HNSW (M 32, efSearch 128), for comparison: the gallery does not use it;
- ``milvus-lite``: the shared gallery (:class:`edgereid.gallery.milvus.MilvusGallery`) on a Milvus Lite file in a
  temporary folder (FLAT index, identity-level search through Milvus' group-by; its memory is Milvus Lite's
  server process and is not counted).

Recall@1 is the share of queries whose top identity equals the exact search's. ``memory_mb`` is what each
search holds (the gallery's vectors for ``numpy-exact``; each FAISS index's own arrays, on top of the gallery,
which the approximate index also reads to rescore its shortlist). ``enrol_per_s`` is the gallery's enrol rate
(``Gallery.enroll``, one identity per call) for ``numpy-exact`` and the index's build rate for the others.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from edgereid.gallery.search import IdentityStore, approximate_index, approximate_top, exact_top, faiss_top

SEARCHES = ("numpy-exact", "faiss-flat", "faiss-pq-fastscan", "faiss-hnsw", "milvus-lite")
CENTRE_COSINE = 0.75
GENERATOR_BLOCK = 65_536


@dataclass(frozen=True)
class GalleryRow:
    """One gallery size and search: build, memory, search latency (median of repeats) and recall@1."""

    size: int
    index: str
    enrol_per_s: float
    build_s: float
    memory_mb: float | None
    search_ms: float
    recall_at_1: float

    def to_dict(self) -> dict[str, float | int | str]:
        return asdict(self)


def _noisy_views(centres: np.ndarray, rng: np.random.Generator, cosine: float) -> np.ndarray:
    """Unit vectors at ~``cosine`` to each unit centre: centre + isotropic noise of norm tan(arccos(cosine))."""
    spread = np.float32(np.sqrt(1.0 / cosine ** 2 - 1.0) / np.sqrt(centres.shape[1]))
    views = centres + spread * rng.standard_normal(centres.shape, dtype=np.float32)
    return views / np.linalg.norm(views, axis=1, keepdims=True)


def identity_clusters(size: int, dim: int, queries: int = 32, seed: int = 0,
                      cosine: float = CENTRE_COSINE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``size`` enrolled unit vectors (one per identity), ``queries`` held-out views of enrolled identities and
    the index of each query's identity; generated in blocks so a million identities need no second copy."""
    rng = np.random.default_rng(seed)
    enrolled = np.empty((size, dim), np.float32)
    truth = np.sort(rng.choice(size, min(queries, size), replace=False))
    query_vectors = np.empty((len(truth), dim), np.float32)
    for start in range(0, size, GENERATOR_BLOCK):
        stop = min(size, start + GENERATOR_BLOCK)
        centres = rng.standard_normal((stop - start, dim), dtype=np.float32)
        centres /= np.linalg.norm(centres, axis=1, keepdims=True)
        enrolled[start:stop] = _noisy_views(centres, rng, cosine)
        inside = (truth >= start) & (truth < stop)
        query_vectors[inside] = _noisy_views(centres[truth[inside] - start], rng, cosine)
    return enrolled, query_vectors, truth


def _median_ms(search: Callable[[], object], repeats: int) -> float:
    search()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        search()
        times.append((time.perf_counter() - start) * 1000.0)
    return float(np.median(times))


def _build(name: str, store: IdentityStore) -> tuple[Callable[[np.ndarray], np.ndarray], int]:
    """``top5(queries) -> identity codes`` for the search ``name`` over ``store`` (its index built here), and
    the bytes the search holds: the store's vectors and labels for exact NumPy search, the index's own
    arrays for FAISS (the approximate index also reads the store's vectors to rescore its shortlist); -1 where
    it is not measured (Milvus Lite)."""
    if name == "numpy-exact":
        return (lambda queries: exact_top(store, queries, 5)[0]), store.vectors.nbytes + store.labels.nbytes
    from edgereid.errors import require

    if name == "milvus-lite":
        return _milvus(store), -1
    faiss = require("faiss", "faiss", "the gallery benchmark's FAISS searches")
    if name == "faiss-pq-fastscan":
        index = approximate_index(store.vectors)
        return (lambda queries: approximate_top(index, store, queries, 5)[0]), int(index.codes.size())
    if name == "faiss-flat":
        index = faiss.IndexFlatIP(store.vectors.shape[1])
    else:
        index = faiss.IndexHNSWFlat(store.vectors.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 40
    index.add(store.vectors)
    size = store.vectors.nbytes
    if name == "faiss-hnsw":
        index.hnsw.efSearch = 128
        size += 4 * int(index.hnsw.neighbors.size())
    return (lambda queries: faiss_top(index, store, queries, 5)[0]), size


def _milvus(store: IdentityStore) -> Callable[[np.ndarray], np.ndarray]:
    """The store's vectors in a Milvus Lite gallery (a temporary file, removed when the process exits)."""
    import atexit
    import shutil
    import tempfile

    from edgereid.gallery.milvus import MilvusGallery

    folder = tempfile.mkdtemp(prefix="edgereid-milvus-bench-")
    gallery = MilvusGallery(Path(folder) / "bench.db", _card(store.vectors.shape[1]))
    atexit.register(shutil.rmtree, folder, True)
    gallery.enroll_many([str(label) for label in store.labels], store.vectors)
    code = {identity: i for i, identity in enumerate(store.identities)}
    return lambda queries: np.array([[code[name] for name in row] for row in gallery.search(queries, 5)[0]])


def _card(dim: int):
    """A card for a ``dim``-dimensional ReID embedding space (the gallery binds itself to one)."""
    from edgereid.card import InputSpec, ModelCard, OutputSpec

    return ModelCard(name=f"gallery_bench_{dim}", task="reid", input=InputSpec(height=256, width=128),
                     outputs=(OutputSpec("embedding", "embedding", (dim,)),), embedding_dim=dim)


def bench_gallery(sizes: list[int], dim: int = 512, searches: tuple[str, ...] = SEARCHES, queries: int = 32,
                  repeats: int = 7, seed: int = 0,
                  progress: Callable[[str], None] = lambda _: None) -> list[GalleryRow]:
    """One :class:`GalleryRow` per size and search (see the module docstring). Enrolment goes through
    :meth:`edgereid.gallery.Gallery.enroll`, one identity at a time, as an app enrols."""
    from edgereid.gallery import Gallery

    rows = []
    for size in sizes:
        progress(f"{size} identities x {dim}: generating")
        vectors, query_vectors, _ = identity_clusters(size, dim, queries, seed)
        gallery = Gallery(_card(dim), use_faiss=False)
        start = time.perf_counter()
        for i, vector in enumerate(vectors):
            gallery.enroll(f"id{i:07d}", vector)
        store = gallery.store
        enrol_rate = size / (time.perf_counter() - start)
        del vectors
        exact_codes = exact_top(store, query_vectors, 1)[0][:, 0]
        for name in searches:
            progress(f"{size} identities: {name}")
            start = time.perf_counter()
            top, held = _build(name, store)
            build_s = time.perf_counter() - start
            codes = top(query_vectors)
            rows.append(GalleryRow(size, name, round(enrol_rate if name == "numpy-exact" else size / max(build_s, 1e-9), 1),
                                   round(build_s, 2), round(held / (1 << 20), 1) if held >= 0 else None,
                                   round(_median_ms(lambda: top(query_vectors), repeats), 2),
                                   round(float(np.mean(codes[:, 0] == exact_codes)), 4)))
            del top
        del gallery, store
    return rows


def plot_gallery(rows: list[GalleryRow], path: str | Path) -> Path:
    """Search latency against gallery size for each search, recall@1 in the legend (needs matplotlib)."""
    from edgereid.plots import line_plot

    series = {}
    for name in dict.fromkeys(r.index for r in rows):
        mine = [r for r in rows if r.index == name]
        series[f"{name} (recall@1 {min(r.recall_at_1 for r in mine):.2f}-{max(r.recall_at_1 for r in mine):.2f})"] = (
            [r.size for r in mine], [r.search_ms for r in mine])
    return line_plot(series, path, "32-query top-5 search", "identities in the gallery", "ms (log scale)",
                     log2_x=True, log_y=True)
