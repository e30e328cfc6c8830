"""The shared gallery over a real Milvus Lite (embedded Milvus, the pymilvus API of a Milvus cluster)."""

import threading

import numpy as np
import pytest

pytest.importorskip("pymilvus", reason="shared galleries need the milvus extra")
pytest.importorskip("milvus_lite", reason="Milvus Lite runs the local .db galleries")

from edgereid.errors import GalleryError, InputError  # noqa: E402
from edgereid.gallery import Gallery  # noqa: E402
from edgereid.gallery.milvus import MilvusGallery, parse_uri  # noqa: E402
from tests.test_gallery import DIM, make_card  # noqa: E402


def test_milvus_search_equals_the_exact_gallery_on_10000_vectors(tmp_path):
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(10_000, DIM))
    names = [f"id{i % 2500:05d}" for i in range(len(vectors))]  # 4 vectors per identity
    exact, shared = Gallery(make_card(), use_faiss=False), Gallery.open(tmp_path / "g.db", card=make_card())
    assert isinstance(shared, MilvusGallery)
    for name, vector in zip(names, vectors):
        exact.enroll(name, vector)
    shared.enroll_many(names, vectors)
    with pytest.raises(InputError, match="one identity per embedding"):
        shared.enroll_many(names[:3], vectors[:2])
    assert len(shared) == 10_000
    queries = vectors[rng.choice(len(vectors), 50, replace=False)] + 0.3 * rng.normal(size=(50, DIM))
    ids_exact, scores_exact = exact.search(queries, k=5)
    ids_shared, scores_shared = shared.search(queries, k=5)
    assert ids_shared == ids_exact
    np.testing.assert_allclose(scores_shared, scores_exact, atol=1e-5)
    shared.close()


def test_enrol_remove_match_and_the_card_kept_with_the_collection(tmp_path):
    path = tmp_path / "site.db"
    gallery = Gallery.open(path, card=make_card(accept_threshold=None))
    gallery.enroll("alice", np.eye(DIM)[0])
    gallery.enroll("bob", np.eye(DIM)[1:3])
    assert gallery.identities == ["alice", "bob"] and len(gallery) == 3
    gallery.threshold = 0.5
    gallery.save_threshold()
    matches = gallery.match(np.stack([np.eye(DIM)[0] + 0.1 * np.eye(DIM)[5], np.eye(DIM)[7]]))
    assert matches[0].identity == "alice" and matches[1].identity is None and matches[1].best_identity in ("alice", "bob")
    assert gallery.remove("bob") == 2 and gallery.identities == ["alice"]
    gallery.close()
    reopened = Gallery.open(path)  # the card and the threshold come from the collection
    assert reopened.card.embedding_space() == make_card().embedding_space() and reopened.threshold == 0.5
    with pytest.raises(GalleryError, match="re-enroll"):
        reopened.check_compatible(make_card("other checkpoint"))
    reopened.close()
    with pytest.raises(GalleryError, match="re-enroll"):
        Gallery.open(path, card=make_card("other checkpoint"))
    with pytest.raises(InputError, match="wrong shape"):
        Gallery.open(path).enroll("carol", np.ones(DIM + 1))


def test_two_writers_lose_nothing(tmp_path):
    gallery = Gallery.open(tmp_path / "busy.db", card=make_card())
    rng = np.random.default_rng(9)
    vectors = rng.normal(size=(2, 1000, DIM))

    def writer(w):
        for i in range(1000):
            gallery.enroll(f"w{w}-{i:04d}", vectors[w, i])

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(gallery) == 2000 and len(gallery.identities) == 2000
    assert gallery.search(vectors[1, 17], k=1)[0] == [["w1-0017"]]
    gallery.close()


def test_uris_and_a_gallery_that_does_not_exist(tmp_path):
    assert parse_uri("milvus://10.0.0.5:19530/site_a") == ("http://10.0.0.5:19530", "site_a")
    with pytest.raises(GalleryError, match="milvus://host:port/collection"):
        parse_uri("milvus://server/")
    with pytest.raises(GalleryError, match="does not exist yet"):
        Gallery.open(tmp_path / "new.db")
