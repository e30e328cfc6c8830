"""The AIO model (paper re-implementation): modality tokenizers into a frozen encoder, a learnable
multimodal ``[CLS]`` token, and the trainable heads.

A sample may bring any non-empty subset of RGB, IR and sketch images and a caption. Each image goes
through its own IBN-style convolutional tokenizer (conv + instance/batch norm + ReLU, stride 16) to
patch tokens with learned positions (with a CLIP encoder: CLIP's own frozen patch tokens, to which the
tokenizer is added through a per-modality gate that starts at 0); the caption through the encoder's frozen
word embeddings plus a trainable adapter (zero-initialised, so training starts from the encoder's own text
tokens; with CLIP: its text tower, then a trainable projection into the vision width). Every token
gets a learned modality embedding; ``[CLS]`` + all tokens pass through the frozen encoder together, and
the ``[CLS]`` output is the sample's feature. Heads: BNNeck + identity classifier (CE), and the
attribute-word classifier on masked text positions (VA). The retrieval embedding is the unit BNNeck
feature, the space the FB loss binds every modality into and the students are distilled into.

Each modality has its own BNNeck (and combinations share one): a BNNeck over all modalities at once
centres them on their common mean, which leaves every RGB embedding carrying the same RGB-minus-mixture
offset; a camera student's own bias-free BNNeck cannot produce that offset, so its embeddings could not
meet the teacher's (first run: mean cosine 0.46 after distillation). Per-modality normalisation is the
usual remedy in cross-modality ReID (our choice; the AIO summaries do not say).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from edgereid.methods.aio.captions import ATTRIBUTE_WORDS, TextBatch
from edgereid.methods.aio.encoder import FrozenEncoder
from edgereid.errors import InputError

IMAGE_MODALITIES = ("rgb", "ir", "sketch")
MODALITIES = (*IMAGE_MODALITIES, "text")
PATCH = 16
BNNECKS = (*MODALITIES, "multi")  # one BNNeck per single modality, one for every combination


class IBN(nn.Module):
    """Half the channels instance-normalised (style invariance), half batch-normalised (IBN-Net a)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.split = channels // 2
        self.instance = nn.InstanceNorm2d(self.split, affine=True)
        self.batch = nn.BatchNorm2d(channels - self.split)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.instance(x[:, :self.split]), self.batch(x[:, self.split:])], 1)


def _conv(in_channels: int, out_channels: int, norm: nn.Module) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, 2, 1, bias=False), norm, nn.ReLU(inplace=True))


class ImageTokenizer(nn.Module):
    """Image ``[B, 3, H, W]`` -> patch tokens ``[B, (H/16)(W/16), D]`` with learned positions."""

    def __init__(self, width: int, input_hw: tuple[int, int], channels: int = 32) -> None:
        super().__init__()
        self.stem = nn.Sequential(_conv(3, channels, IBN(channels)),
                                  _conv(channels, 2 * channels, nn.BatchNorm2d(2 * channels)),
                                  _conv(2 * channels, 4 * channels, nn.BatchNorm2d(4 * channels)),
                                  nn.Conv2d(4 * channels, width, 2, 2))
        self.positions = nn.Parameter(torch.randn(1, (input_hw[0] // PATCH) * (input_hw[1] // PATCH), width) * 0.02)
        self.norm = nn.LayerNorm(width)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        tokens = self.stem(images).flatten(2).transpose(1, 2)
        return self.norm(tokens + self.positions)


class AIOModel(nn.Module):
    """Frozen encoder + trainable tokenizers, ``[CLS]``, modality embeddings, BNNeck, classifier, VA head."""

    def __init__(self, encoder: FrozenEncoder, num_classes: int, input_hw: tuple[int, int] = (128, 64),
                 tokenizer_channels: int = 32) -> None:
        super().__init__()
        if input_hw[0] % PATCH or input_hw[1] % PATCH:
            raise InputError("AIO's image tokenizers need sides that are multiples of 16", got=str(input_hw))
        width = encoder.width
        self.encoder = encoder
        self.input_hw = tuple(input_hw)
        self.num_classes = num_classes
        self.tokenizers = nn.ModuleDict({m: ImageTokenizer(width, input_hw, tokenizer_channels)
                                         for m in IMAGE_MODALITIES})
        # captions in the encoder's width: a residual adapter that starts at 0 (the encoder's own text tokens);
        # in another width (CLIP's text tower): a projection into the encoder's width
        self.text_residual = encoder.text_width == width
        self.text_adapter = nn.Linear(encoder.text_width, width)
        if self.text_residual:
            nn.init.zeros_(self.text_adapter.weight)
            nn.init.zeros_(self.text_adapter.bias)
        # an encoder with its own patch tokens (CLIP) gets the trainable tokenizers added through gates at 0
        self.image_gates = nn.ParameterDict({m: nn.Parameter(torch.zeros(1)) for m in IMAGE_MODALITIES}) \
            if hasattr(encoder, "patch_tokens") else None
        self.modality_embeddings = nn.ParameterDict({m: nn.Parameter(torch.zeros(1, 1, width)) for m in MODALITIES})
        with torch.no_grad():  # the multimodal [CLS] starts as the encoder's own [CLS]
            self.cls = nn.Parameter(encoder.initial_cls().clone())
        self.bnnecks = nn.ModuleDict({key: nn.BatchNorm1d(width) for key in BNNECKS})
        for bnneck in self.bnnecks.values():
            bnneck.bias.requires_grad_(False)
        self.classifier = nn.Linear(width, num_classes, bias=False)
        nn.init.normal_(self.classifier.weight, std=0.001)
        self.attribute_head = nn.Sequential(nn.Linear(width, width), nn.GELU(), nn.LayerNorm(width),
                                            nn.Linear(width, len(ATTRIBUTE_WORDS)))

    @property
    def embedding_dim(self) -> int:
        return self.encoder.width

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for name, p in self.named_parameters() if not name.startswith("encoder.") and p.requires_grad]

    def encode(self, images: dict[str, torch.Tensor] | None = None,
               text: TextBatch | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``[CLS]`` feature ``[B, D]`` of the given modalities (any non-empty subset), and the encoder
        outputs at the text positions ``[B, L, D]`` when a caption is given."""
        images = images or {}
        unknown = set(images) - set(IMAGE_MODALITIES)
        if unknown or (not images and text is None):
            raise InputError("AIO needs at least one known modality", expected=f"images from {IMAGE_MODALITIES} "
                             "and/or a caption", got=f"images {sorted(images)}, text {text is not None}")
        parts, keeps = [], []
        for modality in IMAGE_MODALITIES:
            if modality in images:
                tokens = self.tokenizers[modality](images[modality])
                if self.image_gates is not None:
                    tokens = self.encoder.patch_tokens(images[modality]) + self.image_gates[modality] * tokens
                tokens = tokens + self.modality_embeddings[modality]
                parts.append(tokens)
                keeps.append(torch.ones_like(tokens[..., 0], dtype=torch.bool))
        if text is not None:
            embedded = self.encoder.embed_text(text.ids.to(self.cls.device))
            adapted = self.text_adapter(embedded)
            parts.append((embedded + adapted if self.text_residual else adapted) + self.modality_embeddings["text"])
            keeps.append(text.keep.to(self.cls.device))
        # sizes from tensors, not Python ints, so an exported graph keeps a dynamic batch
        sequence = torch.cat([self.cls.expand(parts[0].shape[0], -1, -1), *parts], 1)
        keep = torch.cat([torch.ones_like(sequence[:, :1, 0], dtype=torch.bool), *keeps], 1)
        hidden = self.encoder(sequence, keep)
        text_hidden = hidden[:, -text.ids.shape[1]:] if text is not None else None
        return hidden[:, 0], text_hidden

    def bnneck(self, feature: torch.Tensor, images: dict[str, torch.Tensor] | None = None,
               text: TextBatch | None = None) -> torch.Tensor:
        """The BNNeck feature of a ``[CLS]`` feature, through the BNNeck of its input's modalities."""
        given = [m for m in IMAGE_MODALITIES if m in (images or {})] + (["text"] if text is not None else [])
        return self.bnnecks[given[0] if len(given) == 1 else "multi"](feature)

    def embed(self, images: dict[str, torch.Tensor] | None = None, text: TextBatch | None = None) -> torch.Tensor:
        """Unit retrieval embedding ``[B, D]`` (BNNeck feature, L2-normalised)."""
        return F.normalize(self.bnneck(self.encode(images, text)[0], images, text), dim=1)
