"""A gallery shared by many gateways: the :class:`~edgereid.gallery.Gallery` API over a Milvus collection.

Opened with :meth:`edgereid.gallery.Gallery.open` from ``milvus://host:port/collection`` (a Milvus server or
cluster) or a local Milvus Lite file ``path.db`` (collection ``edgereid_gallery``; a Lite file is locked to one
process, so several processes share a gallery through a server). The collection holds one row per enrolled
vector (an auto id, the identity, the L2-normalised vector) with a FLAT inner-product index, and the model card
in its properties: opening it with a card of another embedding space is refused with the re-enrol steps, as
local galleries are. Search is identity-level (Milvus groups hits by identity) and exact; reads are strongly
consistent, so an enrolment is seen by the next search, from any gateway. Extra ``milvus`` (pymilvus; Milvus
Lite for local files).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from edgereid.card import ModelCard
from edgereid.errors import GalleryError, InputError, require
from edgereid.gallery.store import Match, _incompatible, decide, unit_rows

CARD_PROPERTY = "edgereid.card"
THRESHOLD_PROPERTY = "edgereid.threshold"
DEFAULT_COLLECTION = "edgereid_gallery"
MAX_IDENTITY_CHARS = 512
_SERVER_URI = re.compile(r"^milvus://(?P<host>[^/:]+):(?P<port>\d{1,5})/(?P<collection>[A-Za-z_][A-Za-z0-9_]{0,254})$")


def is_milvus_uri(uri: str | Path) -> bool:
    """Whether ``uri`` names a Milvus gallery (``milvus://...`` or a ``.db`` Milvus Lite file)."""
    text = str(uri)
    return text.startswith("milvus://") or text.endswith(".db")


def parse_uri(uri: str | Path) -> tuple[str, str]:
    """``(client uri, collection)`` of a Milvus gallery URI, or a :class:`GalleryError` saying the forms."""
    text = str(uri)
    if text.endswith(".db") and not text.startswith("milvus://"):
        return str(Path(text).resolve()), DEFAULT_COLLECTION
    found = _SERVER_URI.match(text)
    if found is None:
        raise GalleryError("not a Milvus gallery URI", expected="milvus://host:port/collection or a Milvus Lite "
                           "file path ending in .db", got=text[:200])
    return f"http://{found['host']}:{found['port']}", found["collection"]


def _quote(identity: str) -> str:
    """An identity as a Milvus filter string literal."""
    return '"' + identity.replace("\\", "\\\\").replace('"', '\\"') + '"'


class MilvusGallery:
    """Enrolled identities of one embedding space in a Milvus collection (see the module docstring)."""

    def __init__(self, uri: str | Path, card: ModelCard | None = None, *, threshold: float | None = None) -> None:
        pymilvus = require("pymilvus", "milvus", "shared Milvus galleries")
        self.uri = str(uri)
        client_uri, self.collection = parse_uri(uri)
        try:
            self._client = pymilvus.MilvusClient(client_uri)
        except Exception as exc:  # pymilvus raises its own exception types
            raise GalleryError(f"cannot reach the Milvus gallery {self.uri}", got=str(exc).splitlines()[0][:300],
                               fix="check the server address (milvus://host:port/collection) or the .db path, "
                                   "and that no other process holds a Milvus Lite file") from exc
        if self._client.has_collection(self.collection):
            stored = ModelCard.from_json(self._properties().get(CARD_PROPERTY, "{}"))
            if card is not None and card.embedding_space() != stored.embedding_space():
                raise _incompatible(f"Milvus gallery {self.uri}", stored, card)
            self._card = card or stored
            saved = self._properties().get(THRESHOLD_PROPERTY)
            default = float(saved) if saved not in (None, "", "none") else None
        else:
            if card is None:
                raise GalleryError(f"the Milvus gallery {self.uri} does not exist yet", fix="pass the model's card "
                                   "to create it: Gallery.open(uri, card=pipeline.models['reid_model'].card)")
            self._create(pymilvus, card)
            self._card = card
            default = card.accept_threshold.score if card.accept_threshold is not None else None
        self.threshold = default if threshold is None else threshold

    def _create(self, pymilvus: Any, card: ModelCard) -> None:
        if card.embedding_dim <= 0:
            raise GalleryError(f"model '{card.name}' declares no embedding", fix="use a reid or face model's card")
        schema = pymilvus.MilvusClient.create_schema(auto_id=True, enable_dynamic_field=False)
        schema.add_field("pk", pymilvus.DataType.INT64, is_primary=True)
        schema.add_field("identity", pymilvus.DataType.VARCHAR, max_length=MAX_IDENTITY_CHARS)
        schema.add_field("vector", pymilvus.DataType.FLOAT_VECTOR, dim=card.embedding_dim)
        index = self._client.prepare_index_params()
        index.add_index("vector", index_type="FLAT", metric_type="IP")
        self._client.create_collection(self.collection, schema=schema, index_params=index, consistency_level="Strong")
        self._client.alter_collection_properties(self.collection, properties={CARD_PROPERTY: card.to_json()})

    def _properties(self) -> dict[str, str]:
        return dict(self._client.describe_collection(self.collection).get("properties", {}))

    # --- the Gallery API -------------------------------------------------------------------------

    @property
    def card(self) -> ModelCard:
        return self._card

    @property
    def dim(self) -> int:
        return self._card.embedding_dim

    def check_compatible(self, card: ModelCard, where: str = "the gallery") -> None:
        """Refuse embeddings of another model (a :class:`GalleryError` that says how to re-enroll)."""
        if card.embedding_space() != self._card.embedding_space():
            raise _incompatible(where, self._card, card)

    @property
    def threshold(self) -> float | None:
        return self._threshold

    @threshold.setter
    def threshold(self, value: float | None) -> None:
        """Set for this client; :meth:`save_threshold` stores it with the collection for every gateway."""
        self._threshold = None if value is None else float(value)

    def save_threshold(self) -> None:
        """Store the current threshold with the collection (other gateways read it when they open it)."""
        value = "none" if self._threshold is None else repr(self._threshold)
        self._client.alter_collection_properties(self.collection, properties={THRESHOLD_PROPERTY: value})

    def enroll(self, identity: str, embeddings: np.ndarray) -> None:
        """Add one or more embeddings of ``identity`` (L2-normalised); visible to every client at once."""
        if not isinstance(identity, str) or not identity or len(identity) > MAX_IDENTITY_CHARS:
            raise InputError("identity must be a non-empty string", expected=f"at most {MAX_IDENTITY_CHARS} "
                             "characters", got=repr(identity)[:80])
        vectors = unit_rows(embeddings, self._card, "embeddings")
        if len(vectors) == 0:
            raise InputError("no embeddings to enroll", expected="at least one vector")
        self._client.insert(self.collection, [{"identity": identity, "vector": v.tolist()} for v in vectors])

    def enroll_many(self, identities: list[str], embeddings: np.ndarray, chunk: int = 5000) -> None:
        """Add one embedding per identity in ``identities`` (row-aligned with ``embeddings``), ``chunk`` rows per
        insert: what enrolling a crop folder or migrating a local gallery needs."""
        vectors = unit_rows(embeddings, self._card, "embeddings")
        if len(identities) != len(vectors):
            raise InputError("one identity per embedding", expected=str(len(vectors)), got=str(len(identities)))
        bad = [name for name in identities if not isinstance(name, str) or not name or len(name) > MAX_IDENTITY_CHARS]
        if bad:
            raise InputError("identities must be non-empty strings", got=repr(bad[0])[:80])
        for start in range(0, len(vectors), chunk):
            rows = range(start, min(len(vectors), start + chunk))
            self._client.insert(self.collection, [{"identity": identities[i], "vector": vectors[i].tolist()} for i in rows])

    def remove(self, identity: str) -> int:
        """Forget ``identity``; returns how many vectors were removed."""
        result = self._client.delete(self.collection, filter=f"identity == {_quote(identity)}")
        return len(result) if isinstance(result, list) else int(result.get("delete_count", 0))

    def purge(self) -> None:
        """Forget every identity (the collection and its card stay)."""
        self._client.delete(self.collection, filter="pk >= 0")

    def __len__(self) -> int:
        """Number of enrolled vectors."""
        rows = self._client.query(self.collection, filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"])

    @property
    def identities(self) -> list[str]:
        """Enrolled identities, sorted (reads every row's identity: for tools, not for the hot path)."""
        names = set()
        iterator = self._client.query_iterator(self.collection, batch_size=1000, filter="", output_fields=["identity"])
        while batch := iterator.next():
            names.update(row["identity"] for row in batch)
        iterator.close()
        return sorted(names)

    def search(self, queries: np.ndarray, k: int = 5) -> tuple[list[list[str]], np.ndarray]:
        """Identity-level top-``k`` per query, as :meth:`edgereid.gallery.Gallery.search` (scores padded with
        -inf where fewer than ``k`` identities are enrolled)."""
        if k < 1:
            raise InputError("k must be at least 1", got=str(k))
        unit = unit_rows(queries, self._card, "queries")
        hits = self._client.search(self.collection, data=unit.tolist(), limit=k, anns_field="vector",
                                   output_fields=["identity"], group_by_field="identity",
                                   search_params={"metric_type": "IP"})
        ids = [[hit["entity"]["identity"] for hit in row] for row in hits]
        scores = np.full((len(unit), k), -np.inf, dtype=np.float32)
        for i, row in enumerate(hits):
            scores[i, :len(row)] = [hit["distance"] for hit in row]
        return ids, scores

    def match(self, queries: np.ndarray) -> list[Match]:
        """Top-1 identity of each query, None where the score is not above the threshold."""
        ids, scores = self.search(queries, k=1)
        return [decide(row[0] if row else "", float(score), self._threshold) for row, score in zip(ids, scores[:, 0])]

    def close(self) -> None:
        """Close the connection (a Milvus Lite file is released for other processes)."""
        self._client.close()
