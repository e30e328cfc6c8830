"""Tests of edgereid.gallery: search, thresholds, persistence, crash safety, FAISS parity."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import edgereid
from edgereid.card import AcceptThreshold, InputSpec, ModelCard, OutputSpec, Provenance
from edgereid.errors import GalleryError, InputError
from edgereid.gallery import Gallery, Match

DIM = 16
REPO_ROOT = Path(edgereid.__file__).resolve().parents[1]


def make_card(checkpoint: str = "abc", **changes) -> ModelCard:
    card = ModelCard(name="test_reid", task="reid", input=InputSpec(height=64, width=32),
                     outputs=(OutputSpec("embedding", "embedding", (DIM,)),), embedding_dim=DIM,
                     provenance=Provenance(checkpoint_sha256=checkpoint))
    return card.replace(**changes)


def axis(i: int, scale: float = 1.0) -> np.ndarray:
    vector = np.zeros(DIM)
    vector[i] = scale
    return vector


def crowded_gallery(rng: np.random.Generator, identities: int, per_identity: int,
                    **options) -> Gallery:
    gallery = Gallery(make_card(), **options)
    for i in range(identities):
        gallery.enroll(f"id{i:05d}", rng.normal(size=(per_identity, DIM)))
    return gallery


def run_python(code: str, *args: str) -> subprocess.CompletedProcess:
    paths = [str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], env=env,
                          capture_output=True, text=True, timeout=120)


# --- enrolment and search ---------------------------------------------------------------------

def test_enroll_search_remove_purge():
    gallery = Gallery(make_card())
    gallery.enroll("bob", axis(1, 3.0))
    gallery.enroll("alice", np.stack([axis(0, 2.0), axis(0) + axis(2)]))
    assert len(gallery) == 3 and gallery.identities == ["alice", "bob"] and gallery.dim == DIM

    ids, scores = gallery.search(axis(0), k=2)
    assert ids == [["alice", "bob"]]
    np.testing.assert_allclose(scores, [[1.0, 0.0]], atol=1e-6)

    assert gallery.remove("alice") == 2
    assert gallery.remove("nobody") == 0
    assert gallery.identities == ["bob"] and len(gallery) == 1
    gallery.purge()
    assert len(gallery) == 0 and gallery.identities == []
    ids, scores = gallery.search(axis(0), k=3)
    assert ids == [[]] and np.all(scores == -np.inf) and scores.shape == (1, 3)
    assert gallery.match(axis(0)) == [Match(identity=None, score=-np.inf, best_identity="")]


def test_identity_level_top_k_with_several_vectors_per_identity():
    gallery = Gallery(make_card())
    gallery.enroll("alice", [axis(0), axis(0) + 0.1 * axis(1), axis(0) + 0.1 * axis(2)])
    gallery.enroll("bob", axis(0) + axis(1))  # cos 0.707
    gallery.enroll("carol", [axis(0) + 2 * axis(1), -axis(0)])  # best cos 0.447
    gallery.enroll("dave", -axis(0))
    # The three best vectors all belong to alice; the identity ranking still lists three people.
    ids, scores = gallery.search(axis(0), k=3)
    assert ids == [["alice", "bob", "carol"]]
    np.testing.assert_allclose(scores, [[1.0, np.sqrt(0.5), 1 / np.sqrt(5)]], atol=1e-6)
    ids, scores = gallery.search(axis(0), k=6)
    assert ids == [["alice", "bob", "carol", "dave"]]
    np.testing.assert_allclose(scores[0, :4], [1.0, np.sqrt(0.5), 1 / np.sqrt(5), -1.0], atol=1e-6)
    assert np.all(scores[0, 4:] == -np.inf)


def test_search_agrees_with_brute_force():
    rng = np.random.default_rng(1)
    gallery = Gallery(make_card())
    enrolled: dict[str, list[np.ndarray]] = {}
    for i in range(40):
        vectors = rng.normal(size=(rng.integers(1, 6), DIM))
        gallery.enroll(f"p{i}", vectors)
        enrolled[f"p{i}"] = [v / np.linalg.norm(v) for v in vectors]
    queries = rng.normal(size=(25, DIM))
    ids, scores = gallery.search(queries, k=5)
    for query, row_ids, row_scores in zip(queries, ids, scores):
        unit = query / np.linalg.norm(query)
        best = {name: max(float(v @ unit) for v in vectors) for name, vectors in enrolled.items()}
        expected = sorted(best, key=best.get, reverse=True)[:5]
        assert row_ids == expected
        np.testing.assert_allclose(row_scores, [best[name] for name in expected], atol=1e-5)


@pytest.mark.parametrize("identity, embeddings, message", [
    ("alice", np.ones(DIM + 1), "wrong shape"),
    ("alice", np.ones((2, 3, DIM)), "wrong shape"),
    ("alice", np.full(DIM, np.nan), "NaN"),
    ("alice", np.stack([np.ones(DIM), np.zeros(DIM)]), "zero"),
    ("alice", np.empty((0, DIM)), "no embeddings"),
    ("", np.ones(DIM), "non-empty string"),
])
def test_enroll_refuses_bad_input(identity, embeddings, message):
    gallery = Gallery(make_card())
    with pytest.raises(InputError, match=message):
        gallery.enroll(identity, embeddings)
    assert len(gallery) == 0


def test_search_refuses_bad_queries():
    gallery = Gallery(make_card())
    gallery.enroll("alice", np.ones(DIM))
    with pytest.raises(InputError, match="wrong shape"):
        gallery.search(np.ones(DIM - 1))
    with pytest.raises(InputError, match="k must be"):
        gallery.search(np.ones(DIM), k=0)


# --- thresholds ---------------------------------------------------------------------------------

def test_threshold_makes_unknowns():
    gallery = Gallery(make_card(), threshold=0.9)
    gallery.enroll("alice", axis(0))
    gallery.enroll("bob", axis(1))
    known, unknown = gallery.match(np.stack([axis(0) + 0.1 * axis(2), axis(0) + axis(1)]))
    assert known.identity == "alice" and known.score > 0.9
    assert unknown.identity is None and unknown.best_identity in {"alice", "bob"}
    assert unknown.score == pytest.approx(np.sqrt(0.5), abs=1e-6)
    gallery.threshold = None
    assert gallery.match(axis(0) + axis(1))[0].identity == unknown.best_identity


def test_threshold_defaults_to_the_card():
    card = make_card(accept_threshold=AcceptThreshold(score=0.6, far=1e-3))
    assert Gallery(card).threshold == 0.6
    assert Gallery(card, threshold=0.2).threshold == 0.2
    assert Gallery(make_card()).threshold is None


def test_calibrate_on_constructed_scores():
    gallery = Gallery(make_card())
    impostor = np.arange(1, 101) / 100  # 0.01 .. 1.00
    genuine = np.array([0.5, 0.97, 0.99, 1.0])
    accepted = gallery.calibrate(genuine, impostor, far=0.05)
    # At most 5 of 100 impostors may exceed the threshold: the 6th largest impostor score.
    assert accepted == AcceptThreshold(score=pytest.approx(0.95), far=0.05)
    assert gallery.threshold == pytest.approx(0.95)
    assert np.mean(impostor > gallery.threshold) <= 0.05


# --- persistence ----------------------------------------------------------------------------------

def test_save_load_round_trip(tmp_path):
    rng = np.random.default_rng(2)
    gallery = crowded_gallery(rng, identities=20, per_identity=3, threshold=0.4)
    path = gallery.save(tmp_path / "gallery.npz")
    assert path == tmp_path / "gallery.npz" and list(tmp_path.iterdir()) == [path]

    loaded = Gallery.load(path)
    assert loaded.card == gallery.card and loaded.threshold == 0.4
    assert loaded.identities == gallery.identities and len(loaded) == len(gallery)
    queries = rng.normal(size=(10, DIM))
    (ids_a, scores_a), (ids_b, scores_b) = gallery.search(queries), loaded.search(queries)
    assert ids_a == ids_b
    np.testing.assert_array_equal(scores_a, scores_b)


def test_save_load_keeps_no_threshold_and_empty_gallery(tmp_path):
    path = Gallery(make_card()).save(tmp_path / "empty.npz")
    loaded = Gallery.load(path, make_card())
    assert len(loaded) == 0 and loaded.threshold is None


def test_load_accepts_a_card_of_the_same_embedding_space(tmp_path):
    gallery = Gallery(make_card())
    gallery.enroll("alice", axis(0))
    path = gallery.save(tmp_path / "g.npz")
    newer = make_card(accept_threshold=AcceptThreshold(score=0.5, far=0.01))
    loaded = Gallery.load(path, newer)
    assert loaded.card == newer and loaded.identities == ["alice"]


def test_incompatible_card_is_refused_with_a_helpful_message(tmp_path):
    gallery = Gallery(make_card())
    gallery.enroll("alice", axis(0))
    path = gallery.save(tmp_path / "g.npz")
    with pytest.raises(GalleryError) as caught:
        Gallery.load(path, make_card(checkpoint="def"))
    message = str(caught.value)
    for fragment in ("built with model 'test_reid'", "abc", "def", "re-enroll",
                     "Gallery(new_card)", "enroll("):
        assert fragment in message


def _damaged_copies(data: bytes) -> dict[str, bytes]:
    middle = len(data) // 2
    corrupt = data[:middle] + bytes(b ^ 0xFF for b in data[middle:middle + 64]) + data[middle + 64:]
    return {"truncated": data[:middle], "corrupt": corrupt, "not-a-gallery": b"hello"}


@pytest.mark.parametrize("kind", ["truncated", "corrupt", "not-a-gallery"])
def test_damaged_file_is_reported(tmp_path, kind):
    rng = np.random.default_rng(3)
    path = crowded_gallery(rng, identities=50, per_identity=4).save(tmp_path / "g.npz")
    path.write_bytes(_damaged_copies(path.read_bytes())[kind])
    with pytest.raises(GalleryError, match="damaged") as caught:
        Gallery.load(path)
    assert "previous good copy" in str(caught.value) and "re-enroll" in str(caught.value)


def test_checksum_catches_an_intact_archive_with_altered_vectors(tmp_path):
    gallery = Gallery(make_card())
    gallery.enroll("alice", axis(0))
    path = gallery.save(tmp_path / "g.npz")
    with np.load(path, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    arrays["vectors"] = arrays["vectors"][:, ::-1].copy()
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    path.write_bytes(buffer.getvalue())
    with pytest.raises(GalleryError, match="checksum"):
        Gallery.load(path)


def rewrite_with_checksum(path: Path, change) -> None:
    """Edit a saved gallery's arrays and recompute its checksum, as a careful forger would."""
    from edgereid.gallery.file_format import digest

    with np.load(path, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files if name != "checksum"}
    change(arrays)
    arrays["checksum"] = np.array(digest(arrays))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    path.write_bytes(buffer.getvalue())


@pytest.mark.parametrize("change, message", [
    (lambda a: a.__setitem__("vectors", a["vectors"] * np.float32(11.8)), "not finite unit vectors"),
    (lambda a: a["vectors"].__setitem__((0, 0), np.nan), "not finite unit vectors"),
    (lambda a: a.__setitem__("labels", np.array(["", "bob"])), "empty identity labels"),
    (lambda a: a.__setitem__("threshold", np.array(np.inf)), "infinite threshold"),
    (lambda a: a.__setitem__("vectors", a["vectors"].astype(np.float64)), "dtypes"),
])
def test_a_rechecksummed_file_must_still_make_sense(tmp_path, change, message):
    gallery = Gallery(make_card())
    gallery.enroll("alice", axis(0))
    gallery.enroll("bob", axis(1))
    path = gallery.save(tmp_path / "g.npz")
    rewrite_with_checksum(path, change)
    with pytest.raises(GalleryError, match=message):
        Gallery.load(path)


def test_a_file_that_would_inflate_far_is_refused_before_inflating(tmp_path):
    """A 50 MB entry of zeros deflates to ~50 KB: 1000:1, where edgereid's own files are stored 1:1."""
    import zipfile

    gallery = Gallery(make_card())
    gallery.enroll("alice", axis(0))
    path = gallery.save(tmp_path / "g.npz")
    with zipfile.ZipFile(path) as source:
        entries = {info.filename: source.read(info) for info in source.infolist()}
    bomb = tmp_path / "bomb.npz"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data if name != "labels.npy" else data + bytes(50 << 20))
    assert bomb.stat().st_size < 1 << 20
    with pytest.raises(GalleryError, match="inflate beyond its budget"):
        Gallery.load(bomb)


def test_missing_file_is_reported(tmp_path):
    with pytest.raises(GalleryError, match="no gallery file"):
        Gallery.load(tmp_path / "absent.npz")


_CRASHING_SAVE = """
    import os, sys
    import numpy as np
    from edgereid.gallery import Gallery

    path, mode = sys.argv[1], sys.argv[2]
    gallery = Gallery.load(path)
    gallery.enroll("late", np.ones(gallery.dim))

    class HalfWriter:
        # Writes half of what it is given, then the process dies as if killed.
        def __init__(self, handle):
            self.handle = handle
        def __enter__(self):
            return self
        def __exit__(self, *exc):
            return False
        def write(self, data):
            self.handle.write(data[: len(data) // 2])
            self.handle.flush()
            os._exit(17)

    if mode == "fsync":
        os.fsync = lambda fd: os._exit(17)
    else:
        real_fdopen = os.fdopen
        os.fdopen = lambda *args, **kwargs: HalfWriter(real_fdopen(*args, **kwargs))
    gallery.save(path)
"""


@pytest.mark.parametrize("mode", ["fsync", "write"])
def test_save_killed_midway_leaves_the_previous_file(tmp_path, mode):
    rng = np.random.default_rng(4)
    previous = crowded_gallery(rng, identities=500, per_identity=4)
    path = previous.save(tmp_path / "gallery.npz")
    before = hashlib.sha256(path.read_bytes()).hexdigest()

    result = run_python(_CRASHING_SAVE, str(path), mode)
    assert result.returncode == 17, result.stderr  # died inside save, not before it

    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    leftovers = list(tmp_path.glob(".gallery.npz.*.tmp"))
    assert len(leftovers) == 1  # the partial data went to a temporary file beside the target
    if mode == "write":
        assert leftovers[0].stat().st_size < path.stat().st_size
    loaded = Gallery.load(path)
    assert "late" not in loaded.identities and len(loaded) == len(previous)
    assert not list(tmp_path.glob(".gallery.npz.*.tmp"))  # the dead writer's temp file is swept by the load


# --- FAISS ----------------------------------------------------------------------------------------

def test_faiss_search_is_identical_to_exact_search():
    pytest.importorskip("faiss")
    rng = np.random.default_rng(5)
    enrolments = [(f"id{i:04d}", rng.normal(size=(5, DIM))) for i in range(1000)]
    # One identity with many vectors forces FAISS to search deeper than k distinct vectors.
    crowd = rng.normal(size=DIM)
    enrolments.append(("crowd", crowd + 0.05 * rng.normal(size=(400, DIM))))
    exact, with_faiss = Gallery(make_card(), use_faiss=False), Gallery(make_card(), use_faiss=True)
    for name, vectors in enrolments:
        exact.enroll(name, vectors)
        with_faiss.enroll(name, vectors)

    queries = np.concatenate([rng.normal(size=(100, DIM)),
                              crowd + 0.2 * rng.normal(size=(50, DIM))])
    ids_exact, scores_exact = exact.search(queries, k=10)
    ids_faiss, scores_faiss = with_faiss.search(queries, k=10)
    assert ids_faiss == ids_exact
    np.testing.assert_allclose(scores_faiss, scores_exact, atol=1e-5)
    assert "crowd" in ids_exact[-1]


def test_gallery_imports_without_torch():
    result = run_python("""
        import sys
        import edgereid.gallery
        assert "torch" not in sys.modules and "faiss" not in sys.modules, sorted(sys.modules)
    """)
    assert result.returncode == 0, result.stderr


def test_the_approximate_index_rescores_a_shortlist_exactly_and_finds_the_exact_top_identities():
    pytest.importorskip("faiss")
    from edgereid.gallery.search import IdentityStore, approximate_index, approximate_top, exact_top

    rng = np.random.default_rng(11)
    centres = rng.normal(size=(3000, 64)).astype(np.float32)
    noisy = centres + 0.9 / np.sqrt(64) * rng.normal(size=centres.shape).astype(np.float32) * np.linalg.norm(
        centres, axis=1, keepdims=True)
    labels = np.array([f"id{i:05d}" for i in range(len(centres))])
    crowd = rng.normal(size=(300, 64)).astype(np.float32) * 0.05 + centres[0]  # one identity, many vectors
    vectors = np.concatenate([noisy, crowd])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    store = IdentityStore.build(vectors, np.concatenate([labels, np.full(len(crowd), "crowd")]))
    queries = centres[rng.choice(len(centres), 64, replace=False)] + 0.5 * rng.normal(size=(64, 64)).astype(np.float32)
    queries = np.concatenate([queries, centres[:1]]).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    exact_codes, exact_scores = exact_top(store, queries, 5)
    codes, scores = approximate_top(approximate_index(store.vectors), store, queries, 5)
    assert np.mean(codes[:, 0] == exact_codes[:, 0]) >= 0.99
    same = codes == exact_codes
    np.testing.assert_allclose(scores[same], exact_scores[same], atol=1e-5)  # rescored with the stored vectors
    assert store.identities[codes[-1, 0]] in ("crowd", "id00000") and len(set(codes[-1])) == 5


def test_a_large_gallery_switches_to_the_approximate_index(monkeypatch):
    pytest.importorskip("faiss")
    import edgereid.gallery.store as store_module

    monkeypatch.setattr(store_module, "APPROX_MIN_VECTORS", 500)
    rng = np.random.default_rng(2)
    gallery, exact = Gallery(make_card()), Gallery(make_card(), use_faiss=False)
    for i in range(499):
        vector = rng.normal(size=DIM)
        gallery.enroll(f"p{i}", vector)
        exact.enroll(f"p{i}", vector)
    assert not gallery.approximate
    gallery.enroll("last", rng.normal(size=DIM))
    assert gallery.approximate and not exact.approximate
    assert gallery.search(exact._consolidated().vectors[:3], k=1)[0] == [["p0"], ["p1"], ["p10"]]
