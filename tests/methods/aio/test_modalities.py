"""Missing-modality synthesis: channel-augmented IR and line-art sketch."""

from __future__ import annotations

import numpy as np
import pytest

from edgereid.methods.aio.modalities import channel_augmented_ir, line_art, modality_images
from edgereid.errors import InputError


def _crops() -> np.ndarray:
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, (6, 32, 16, 3), dtype=np.uint8)
    crops[:, 8:24, 4:12] = (200, 30, 30)  # a coloured block: edges for the line art
    return crops


def test_channel_augmented_ir_copies_one_source_channel():
    crops = _crops()
    ir = channel_augmented_ir(crops, np.random.default_rng(1))
    assert ir.shape == crops.shape and ir.dtype == np.uint8
    for source, out in zip(crops, ir):
        assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()
        assert any((out[..., 0] == source[..., c]).all() for c in range(3))


def test_line_art_is_dark_strokes_on_white_of_the_same_shape():
    crops = _crops()
    for source in crops:
        sketch = line_art(source)
        assert sketch.shape == source.shape and sketch.dtype == np.uint8
        assert (sketch[..., 0] == sketch[..., 2]).all()
    flat = np.full((32, 16, 3), 120, np.uint8)
    assert (line_art(flat) == 255).all()  # nothing to draw: blank paper
    block = flat.copy()
    block[8:24, 4:12] = 20
    assert (line_art(block) < 128).any()


def test_both_sources_keep_the_batch_shape():
    crops = _crops()
    for source in ("synthetic", "world"):
        for modality in ("rgb", "ir", "sketch"):
            out = modality_images(crops, modality, source, np.random.default_rng(2))
            assert out.shape == crops.shape and out.dtype == np.uint8
    with pytest.raises(InputError, match="unknown modality source"):
        modality_images(crops, "ir", "real", np.random.default_rng(2))
    with pytest.raises(InputError, match="batch of BGR crops"):
        modality_images(crops[0], "ir", "world", np.random.default_rng(2))
