"""A tiny AIO model (random 2-layer encoder, d = 32) for the CPU tests (``methods.md`` §2.5)."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")


@pytest.fixture
def tiny_aio():
    from edgereid.methods.aio.encoder import EncoderSpec, load_encoder
    from edgereid.methods.aio.model import AIOModel

    return AIOModel(load_encoder(EncoderSpec(kind="tiny")), num_classes=5, input_hw=(32, 16), tokenizer_channels=8)


@pytest.fixture
def captions():
    from edgereid.data.synthetic import World, WorldConfig

    world = World(WorldConfig(seed=3, num_identities=5, num_cameras=2))
    return [world.identity(pid).text for pid in range(1, 6)]
