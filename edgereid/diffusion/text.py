"""A small word-level text encoder: the context of the world's latent diffusion model.

Stable Diffusion conditions its UNet on CLIP's text output; the synthetic world's captions ("a tall
person ... wearing a red jacket ...") have a closed vocabulary of a few hundred words, so a word
embedding with positions and one transformer layer, trained together with the UNet, is enough.
Words outside the vocabulary map to ``<unk>``.
"""

from __future__ import annotations

import re

import torch
from torch import nn

PAD, UNK, START = "<pad>", "<unk>", "<start>"


def words(text: str) -> list[str]:
    """Lower-case words of a caption (letters, digits and hyphens)."""
    return re.findall(r"[a-z0-9-]+", text.lower())


def build_vocabulary(texts: list[str]) -> list[str]:
    """``<pad>``, ``<unk>``, ``<start>`` and every word of ``texts`` in sorted order."""
    return [PAD, UNK, START] + sorted({w for text in texts for w in words(text)})


class WordTextEncoder(nn.Module):
    """Captions to a ``[B, max_words, dim]`` context for the UNet's cross-attention."""

    def __init__(self, vocabulary: list[str], dim: int = 64, max_words: int = 32, heads: int = 4) -> None:
        super().__init__()
        self.vocabulary = list(vocabulary)
        self.index = {w: i for i, w in enumerate(self.vocabulary)}
        self.max_words = max_words
        self.dim = dim
        self.embed = nn.Embedding(len(self.vocabulary), dim)
        self.position = nn.Parameter(torch.zeros(max_words, dim))
        self.layer = nn.TransformerEncoderLayer(dim, heads, 2 * dim, dropout=0.0, batch_first=True)
        self.norm = nn.LayerNorm(dim)

    def tokenize(self, texts: list[str]) -> torch.Tensor:
        """Word indices ``[B, max_words]``: ``<start>`` (so an empty caption, the unconditional context, still
        has one token to attend to), the words, ``<pad>`` (index 0); cut at ``max_words``."""
        unk = self.index[UNK]
        rows = [([self.index[START]] + [self.index.get(w, unk) for w in words(t)])[:self.max_words] for t in texts]
        ids = torch.zeros(len(texts), self.max_words, dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, :len(row)] = torch.tensor(row, dtype=torch.long)
        return ids

    def forward(self, texts: list[str]) -> torch.Tensor:
        ids = self.tokenize(texts).to(self.position.device)
        hidden = self.embed(ids) + self.position
        return self.norm(self.layer(hidden, src_key_padding_mask=ids == 0))

    def config(self) -> dict:
        """What rebuilds this encoder (saved next to its weights)."""
        return {"vocabulary": self.vocabulary, "dim": self.dim, "max_words": self.max_words,
                "heads": self.layer.self_attn.num_heads}
