"""Captions to token ids for AIO's text tokenizer, with attribute words masked for the VA head.

VA (vision-guided masked attribute modelling) hides the attribute words of a caption (colours,
garments, patterns, accessories, hair; not the stature before "person", whose "short" is not the hair's)
and predicts each hidden word from the image and the rest of
the caption. Whole words are hidden: every word piece of a masked word becomes ``[MASK]`` and carries
the word's class among :data:`ATTRIBUTE_WORDS` as its target; other positions carry ``IGNORE``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from typing import TYPE_CHECKING

import numpy as np

from edgereid.data import appearance as _a

if TYPE_CHECKING:
    import torch

IGNORE = -100
ATTRIBUTE_WORDS: tuple[str, ...] = tuple(sorted({
    *_a.CLOTHING_COLOURS, *_a.SHOE_COLOURS, *_a.HAIR_COLOURS, *_a.UPPER_STYLES, *_a.LOWER_STYLES,
    *_a.HAIR_STYLES, *_a.ACCESSORIES, "stripes", "checked", "logo", "glasses", "beard"} - {"none"}))
_WORD = re.compile(r"[a-z]+(?:-[a-z]+)*|[^\sa-z]")


@dataclass
class TextBatch:
    """``ids`` ``[B, L]`` (``[CLS] words [SEP]``, then padding), ``keep`` ``[B, L]`` real tokens,
    ``targets`` ``[B, L]``: the attribute class of masked pieces, ``IGNORE`` elsewhere (None when the
    batch did not come from :meth:`CaptionTokenizer.encode`, e.g. in an exported text branch)."""

    ids: "torch.Tensor"
    keep: "torch.Tensor"
    targets: "torch.Tensor | None" = None


class CaptionTokenizer:
    """Word pieces of captions through the frozen encoder's tokenizer (cached per word)."""

    def __init__(self, tokenizer, special: dict[str, int | None], max_length: int = 64) -> None:
        tokenizer.no_padding()  # a tokenizer.json may pad every encoding (MiniLM's pads to 128): words are
        tokenizer.no_truncation()  # tokenized one by one here, and padded per batch below
        self.tokenizer = tokenizer
        self.special = special
        self.max_length = max_length
        self._pieces: dict[str, list[int]] = {}
        self._classes = {word: index for index, word in enumerate(ATTRIBUTE_WORDS)}

    def pieces(self, word: str) -> list[int]:
        if word not in self._pieces:
            self._pieces[word] = self.tokenizer.encode(word, add_special_tokens=False).ids
        return self._pieces[word]

    def encode(self, captions: list[str], mask_probability: float = 0.0,
               rng: np.random.Generator | None = None) -> TextBatch:
        """Token ids of ``captions`` as torch tensors; with ``mask_probability`` > 0 each attribute word is
        masked with that probability (at least one per caption that has any)."""
        import torch

        ids, keep, targets = self.encode_numpy(captions, mask_probability, rng)
        return TextBatch(torch.from_numpy(ids), torch.from_numpy(keep), torch.from_numpy(targets))

    def encode_numpy(self, captions: list[str], mask_probability: float = 0.0,
                     rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`encode` as NumPy arrays ``ids`` int64, ``keep`` bool, ``targets`` int64 (no torch needed)."""
        rows, targets = [], []
        for caption in captions:
            words = _WORD.findall(caption.lower())
            masked = self._choose_masked(words, mask_probability, rng) if mask_probability > 0 else set()
            row, target = [self.special["[CLS]"]], [IGNORE]
            for position, word in enumerate(words):
                pieces = self.pieces(word)
                hidden = position in masked
                row += [self.special["[MASK]"]] * len(pieces) if hidden else pieces
                target += [self._classes[word] if hidden else IGNORE] * len(pieces)
            rows.append(row[:self.max_length - 1] + [self.special["[SEP]"]])
            targets.append(target[:self.max_length - 1] + [IGNORE])
        length = max(len(r) for r in rows)
        ids = np.full((len(rows), length), self.special["[PAD]"], dtype=np.int64)
        target_ids = np.full((len(rows), length), IGNORE, dtype=np.int64)
        keep = np.zeros((len(rows), length), dtype=bool)
        for i, (row, target) in enumerate(zip(rows, targets)):
            ids[i, :len(row)] = row
            target_ids[i, :len(target)] = target
            keep[i, :len(row)] = True
        return ids, keep, target_ids

    def _choose_masked(self, words: list[str], probability: float, rng: np.random.Generator | None) -> set[int]:
        if rng is None:
            raise ValueError("masking attribute words needs a random generator")
        start = words.index("person") + 1 if "person" in words else 0  # "a short person": stature, not hair
        candidates = [i for i, word in enumerate(words) if i >= start and word in self._classes]
        if not candidates:
            return set()
        chosen = {i for i in candidates if rng.random() < probability}
        return chosen or {int(rng.choice(candidates))}
