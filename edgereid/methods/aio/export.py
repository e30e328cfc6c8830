"""The AIO teacher's branches as ONNX files, each checked against torch before it lands.

- ``rgb.onnx``, ``ir.onnx``, ``sketch.onnx``: one image modality in, the unit embedding out, with a
  ReID model card, so the pipeline, galleries and ``edgereid evaluate`` take them like any ReID model.
- ``text.onnx`` (``input_ids``, ``attention_mask`` int64 ``[B, L]`` in, ``embedding`` out) with the
  tokenizer (``tokenizer.json``) and ``text_encoder.json`` beside it: an operator's description is
  encoded on a CPU with ONNX Runtime (:mod:`edgereid.methods.aio.query`) and searched against the embeddings
  of camera crops (RGB students distilled into this space, or the ``rgb.onnx`` branch).
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgereid.methods.aio.captions import CaptionTokenizer, TextBatch
from edgereid.methods.aio.checkpoint import image_spec
from edgereid.methods.aio.model import IMAGE_MODALITIES, AIOModel
from edgereid.card import ModelCard, OutputSpec, Provenance, file_sha256
from edgereid.errors import ExportError
from edgereid.fileio import atomic_write_bytes, atomic_write_text
from edgereid.ort_session import open_session

TEXT_INPUTS = ("input_ids", "attention_mask")
PARITY_CAPTIONS = ("a tall person with short black hair, wearing a red jacket, blue trousers and black shoes",
                   "a person in a yellow t-shirt with a backpack")


class ImageBranch(nn.Module):
    """One image modality of the teacher: normalised crops ``[B, 3, H, W]`` -> unit embeddings."""

    def __init__(self, model: AIOModel, modality: str) -> None:
        super().__init__()
        self.model = model
        self.modality = modality

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.embed({self.modality: images})


class TextBranch(nn.Module):
    """The teacher's text branch: token ids and attention mask ``[B, L]`` -> unit embeddings."""

    def __init__(self, model: AIOModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model.embed(text=TextBatch(input_ids, attention_mask > 0))


def branch_card(model: AIOModel, modality: str, checkpoint: str | Path | None = None) -> ModelCard:
    """The ReID card of an image branch; the checkpoint hash ties it to the teacher's embedding space."""
    provenance = Provenance(checkpoint_sha256=file_sha256(checkpoint) if checkpoint else "",
                            source=json.dumps({"aio_teacher": Path(checkpoint).name if checkpoint else "",
                                               "modality": modality}))
    return ModelCard(name=f"aio_teacher_{modality}", task="reid", input=image_spec(model.input_hw),
                     outputs=(OutputSpec("embedding", "embedding", (model.embedding_dim,)),),
                     embedding_dim=model.embedding_dim, provenance=provenance)


def export_branches(model: AIOModel, checkpoint: str | Path, out_dir: str | Path) -> dict[str, str]:
    """Write the three image branches and the text branch to ``out_dir``; returns a parity summary each."""
    from edgereid.exporting.onnx_export import export_onnx

    out_dir = Path(out_dir)
    model = model.eval()
    reports = {m: export_onnx(ImageBranch(model, m), branch_card(model, m, checkpoint), out_dir / f"{m}.onnx").summary()
               for m in IMAGE_MODALITIES}
    reports["text"] = export_text(model, checkpoint, out_dir)
    return reports


def export_text(model: AIOModel, checkpoint: str | Path, out_dir: Path, opset: int = 17) -> str:
    """``text.onnx`` + ``tokenizer.json`` + ``text_encoder.json``; parity with torch at two lengths."""
    import onnx

    encoder = model.encoder
    tokens = CaptionTokenizer(encoder.tokenizer, encoder.special)
    example = tokens.encode(list(PARITY_CAPTIONS))
    branch = TextBranch(model).eval()
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(branch, (example.ids, example.keep.long()), buffer, input_names=list(TEXT_INPUTS),
                          output_names=["embedding"], opset_version=opset, dynamo=False,
                          dynamic_axes={"input_ids": {0: "batch", 1: "length"},
                                        "attention_mask": {0: "batch", 1: "length"}, "embedding": {0: "batch"}})
    proto = onnx.load_from_string(buffer.getvalue())
    onnx.checker.check_model(proto)
    data = proto.SerializeToString()
    worst = _text_parity(branch, data, tokens)
    atomic_write_bytes(out_dir / "text.onnx", data)
    atomic_write_text(out_dir / "tokenizer.json", encoder.tokenizer.to_str())
    atomic_write_text(out_dir / "text_encoder.json", json.dumps({
        "embedding_dim": model.embedding_dim, "max_length": tokens.max_length, "special_tokens": encoder.special,
        "teacher_checkpoint_sha256": file_sha256(checkpoint), "encoder": encoder.spec.kind}, indent=1))
    return f"min embedding cosine {worst:.6f} over 3 caption batches (2 lengths, batches 1 and 3)"


def _text_parity(branch: TextBranch, onnx_bytes: bytes, tokens: CaptionTokenizer, min_cosine: float = 0.9999) -> float:

    session = open_session(onnx_bytes, error=ExportError)
    worst = 1.0
    for captions in (PARITY_CAPTIONS[:1], ("a person",), (PARITY_CAPTIONS[1], "a person", PARITY_CAPTIONS[0])):
        batch = tokens.encode(list(captions))
        with torch.no_grad():
            want = branch(batch.ids, batch.keep.long()).numpy()
        have = session.run(["embedding"], {"input_ids": batch.ids.numpy(), "attention_mask": batch.keep.long().numpy()})[0]
        cosine = (want * have).sum(1) / (np.linalg.norm(want, axis=1) * np.linalg.norm(have, axis=1))
        worst = min(worst, float(cosine.min()))
    if worst < min_cosine:
        raise ExportError("ONNX Runtime disagrees with torch on the text branch", got=f"min cosine {worst:.6f}",
                          expected=f">= {min_cosine}")
    return worst
