"""Text queries on a CPU: an operator's description encoded by the AIO teacher's exported text branch
with ONNX Runtime (no torch), into the embedding space that camera crops are searched in; and the check that a
gallery was enrolled in that space (:meth:`TextQueryEncoder.check_gallery_space`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from edgereid.methods.aio.captions import CaptionTokenizer
from edgereid.card import ModelCard
from edgereid.errors import CheckpointError, GalleryError, InputError
from edgereid.ops.postprocess import l2_normalize
from edgereid.ort_session import open_session

TEXT_FILES = ("text.onnx", "tokenizer.json", "text_encoder.json")


class TextQueryEncoder:
    """``TextQueryEncoder("runs/aio/teacher").encode(["a person in a red jacket with a backpack"])``
    gives unit embeddings ``[N, D]`` comparable with the teacher's (and its distilled students') crops."""

    def __init__(self, folder: str | Path, threads: int = 2) -> None:
        from tokenizers import Tokenizer

        folder = Path(folder)
        missing = [name for name in TEXT_FILES if not (folder / name).is_file()]
        if missing:
            raise CheckpointError(f"{folder} has no exported AIO text branch", expected=", ".join(TEXT_FILES),
                                 got=f"missing {missing}", fix="train an AIO teacher with export: true (its run folder holds them)")
        self.info = json.loads((folder / "text_encoder.json").read_text())
        self.tokens = CaptionTokenizer(Tokenizer.from_file(str(folder / "tokenizer.json")),
                                       self.info["special_tokens"], self.info["max_length"])
        self.session = open_session(folder / "text.onnx", threads=threads, error=CheckpointError)

    @property
    def embedding_dim(self) -> int:
        return int(self.info["embedding_dim"])

    def encode(self, texts: list[str]) -> np.ndarray:
        """Unit embeddings of ``texts`` (float32 ``[N, D]``)."""
        if isinstance(texts, str) or not texts or not all(isinstance(t, str) and t.strip() for t in texts):
            raise InputError("text queries must be a non-empty list of non-empty strings", got=repr(texts)[:80])
        ids, keep, _ = self.tokens.encode_numpy(list(texts))
        embedding = self.session.run(["embedding"], {"input_ids": ids, "attention_mask": keep.astype(np.int64)})[0]
        return l2_normalize(embedding.astype(np.float32))

    def check_gallery_space(self, dim: int, card: ModelCard) -> None:
        """Raise :class:`GalleryError` unless a gallery of ``dim``-d embeddings enrolled with the model of
        ``card`` lies in this encoder's embedding space: the AIO teacher's own branch (same checkpoint
        hash) or a student distilled from it (its provenance names the teacher's hash)."""
        if dim != self.embedding_dim:
            raise GalleryError("the text encoder and the gallery embed into different spaces",
                               expected=f"{self.embedding_dim}-d gallery", got=f"{dim}-d",
                               fix="enrol the gallery with a model distilled from this AIO teacher")
        teacher = self.info["teacher_checkpoint_sha256"]
        provenance = card.provenance
        if provenance.checkpoint_sha256 != teacher and f"sha256 {teacher[:16]}" not in provenance.source:
            raise GalleryError("the gallery was not enrolled in this AIO teacher's embedding space",
                               expected=f"a model of teacher sha256 {teacher[:16]}... (its branch or a student "
                               "distilled from it)", got=f"gallery model {card.name!r}",
                               fix="enrol the gallery with the teacher's rgb.onnx or a student distilled from it")
