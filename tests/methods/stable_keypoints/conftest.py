"""Names shared by the keypoint tests (the tiny diffusion model fixtures live in tests/conftest.py)."""

# the up-path cross-attention modules of the tiny UNet built in tests/conftest.py
TINY_LAYERS = ("up_blocks.1.attentions.0", "up_blocks.1.attentions.1")
