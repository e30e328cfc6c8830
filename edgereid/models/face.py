"""Low-resolution face students: MobileFaceNet-class (PReLU bottlenecks, global depthwise pooling)."""

from __future__ import annotations

import torch
from torch import nn

from edgereid.card import ModelCard
from edgereid.models.layers import ConvBNAct, MobileNetV2Trunk, embedding_card, l2_normalize
from edgereid.registry import register_model

# (expansion, channels, repeats, stride), MobileFaceNet's bottleneck plan.
MOBILEFACENET_STAGES = ((2, 64, 5, 2), (4, 128, 1, 2), (2, 128, 6, 1), (4, 128, 1, 2), (2, 128, 2, 1))
FACE_MEAN = (127.5, 127.5, 127.5)
FACE_STD = (128.0, 128.0, 128.0)


class FaceEmbeddingModel(nn.Module):
    """The face-model interface CoReFace's dropout views and CCFace's distillation use: ``pre_embedding`` (the
    feature the dropout views are taken of) then ``embedding_head``; ``features`` is the unnormalised embedding
    (what margin-softmax heads take), ``forward`` the unit one. Subclasses define the two stages."""

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.embedding_head(self.pre_embedding(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return l2_normalize(self.features(x))


class FaceStudent(FaceEmbeddingModel):
    """Aligned face crop in, L2-normalised embedding out; its input size (a multiple of the trunk's stride, 32 for
    MobileFaceNet: 32, 64, 112...) is written in its card, which the runtime and the trainers read.

    The same class at full width and 64x64 input serves as the high-resolution face teacher
    (``face_teacher_64``); ``classifier`` holds the margin-softmax proxies of a trained teacher,
    which CCFace distillation shares with the student."""

    task = "face"

    def __init__(self, width: float = 1.0, embedding_dim: int = 128, input_size: int = 64,
                 stages: tuple = MOBILEFACENET_STAGES, num_classes: int = 0) -> None:
        super().__init__()
        self.input_hw = (input_size, input_size)
        self.embedding_dim = embedding_dim
        self.trunk = MobileNetV2Trunk(width, stages=stages, act=nn.PReLU)
        if input_size % self.trunk.stride or input_size < self.trunk.stride:
            raise ValueError(f"the face model's input must be a multiple of its trunk's stride {self.trunk.stride}, "
                             f"got {input_size}")
        channels = self.trunk.out_channels * 4
        spatial = input_size // self.trunk.stride
        self.expand = ConvBNAct(self.trunk.out_channels, channels, 1, act=nn.PReLU)
        self.gdc = ConvBNAct(channels, channels, spatial, groups=channels, act=None)
        self.gdc[0].padding = (0, 0)  # global depthwise conv: one output cell
        self.embed = nn.Linear(channels, embedding_dim, bias=False)
        self.bn = nn.BatchNorm1d(embedding_dim)
        self.classifier = nn.Linear(embedding_dim, num_classes, bias=False) if num_classes else None

    def pre_embedding(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled trunk feature before the embedding layer (where CoReFace applies its dropout views)."""
        return self.gdc(self.expand(self.trunk(x))).flatten(1)

    def embedding_head(self, pre: torch.Tensor) -> torch.Tensor:
        """Unnormalised embedding from a (possibly dropped-out) pre-embedding feature."""
        return self.bn(self.embed(pre))

    def card(self, name: str) -> ModelCard:
        return embedding_card(name, "face", self.input_hw, FACE_MEAN, FACE_STD, self.embedding_dim)


@register_model("face_mobilefacenet", task="face")
def face_mobilefacenet(**kwargs) -> FaceStudent:
    """MobileFaceNet-class, 64x64 input, 128-d (~1M parameters)."""
    return FaceStudent(**kwargs)


@register_model("face_mobilefacenet_112", task="face")
def face_mobilefacenet_112(**kwargs) -> FaceStudent:
    """MobileFaceNet at the standard 112x112 aligned face, 512-d (the IResNet teachers' size): the student for
    models distilled from an ``iresnet*`` teacher."""
    return FaceStudent(**{"input_size": 112, "embedding_dim": 512, **kwargs})


@register_model("face_mobilefacenet_32", task="face")
def face_mobilefacenet_32(**kwargs) -> FaceStudent:
    """Half-width MobileFaceNet at 32x32 input, for CPU training on small faces."""
    return FaceStudent(**{"width": 0.5, "input_size": 32, **kwargs})


@register_model("test_face", task="face")
def test_face(**kwargs) -> FaceStudent:
    """Tiny random-weight face model for tests: 32x32 input, 32-d."""
    stages = ((2, 16, 1, 2), (2, 24, 1, 2), (2, 32, 1, 2))
    return FaceStudent(**{"width": 0.5, "embedding_dim": 32, "input_size": 32, "stages": stages, **kwargs})


@register_model("face_teacher_64", task="face")
def face_teacher_64(**kwargs) -> FaceStudent:
    """High-resolution face teacher: full-width MobileFaceNet at 64x64 (CoReFace / ArcFace teachers)."""
    return FaceStudent(**{"input_size": 64, **kwargs})


@register_model("test_face_teacher", task="face")
def test_face_teacher(**kwargs) -> FaceStudent:
    """Tiny random-weight face teacher for tests: 48x48 input, 32-d (the test student's dimension)."""
    stages = ((2, 16, 1, 2), (2, 24, 1, 2), (2, 32, 1, 2))
    return FaceStudent(**{"width": 0.5, "embedding_dim": 32, "input_size": 48, "stages": stages, **kwargs})
