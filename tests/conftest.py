"""Shared fixtures: tiny random-weight students, checkpointed and exported once per test session."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

TINY_MODELS = ("test_reid", "test_keypoints", "test_face")


def pytest_collection_modifyitems(config, items) -> None:
    """Tests marked ``gpu`` are skipped with the reason where no CUDA device can be used (as torchvision's
    conftest does); ``scripts/gpu_check.py`` runs the GPU side on a GPU machine."""
    from edgereid.engine_file import gpu_available

    gpu_items = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu_items:
        return
    usable, why = gpu_available()
    if not usable:
        skip = pytest.mark.skip(reason=f"needs a CUDA GPU ({why})")
        for item in gpu_items:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _restore_random_state():
    """Every test leaves Python's, NumPy's and torch's global random state as it found it, so no test's
    result depends on which tests ran before it."""
    import random
    import sys

    python_state = random.getstate()
    numpy_state = np.random.get_state()
    torch = sys.modules.get("torch")
    torch_state = torch.random.get_rng_state() if torch is not None else None
    yield
    random.setstate(python_state)
    np.random.set_state(numpy_state)
    if torch_state is not None:
        torch.random.set_rng_state(torch_state)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, dict[str, Path]]:
    """``{name: {"checkpoint": path, "onnx": path}}`` for the tiny test students."""
    torch = pytest.importorskip("torch")
    from edgereid.exporting.onnx_export import export_checkpoint
    from edgereid.models.checkpoint import save_checkpoint
    from edgereid.models import create_model

    root = tmp_path_factory.mktemp("models")
    models = {}
    for index, name in enumerate(TINY_MODELS):
        torch.manual_seed(index)
        model = create_model(name)
        _randomise_batchnorm(model, torch)
        checkpoint = save_checkpoint(model, root / f"{name}.safetensors")
        onnx_path = root / f"{name}.onnx"
        export_checkpoint(checkpoint, onnx_path)
        models[name] = {"checkpoint": checkpoint, "onnx": onnx_path}
    return models


def _randomise_batchnorm(model, torch) -> None:
    """Non-trivial BN statistics, so parity checks exercise the folded arithmetic."""
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 1.5)


@pytest.fixture
def frames() -> list[np.ndarray]:
    """Three textured BGR frames of different sizes."""
    rng = np.random.default_rng(0)
    sizes = [(240, 320), (180, 260), (240, 320)]
    out = []
    for h, w in sizes:
        base = rng.integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8)
        import cv2

        frame = cv2.resize(base, (w, h), interpolation=cv2.INTER_CUBIC)
        out.append(np.clip(frame.astype(int) + rng.integers(-20, 20, frame.shape), 0, 255).astype(np.uint8))
    return out


# A tiny random latent diffusion model (the same diffusers classes as Stable Diffusion), saved once.
@pytest.fixture(scope="session")
def tiny_ldm_path(tmp_path_factory) -> Path:
    torch = pytest.importorskip("torch")
    pytest.importorskip("diffusers")
    from edgereid.diffusion.ldm import save_ldm
    from edgereid.methods.ldm_pretrain import PretrainConfig, UnetConfig, VaeConfig, build_ldm

    torch.manual_seed(0)
    config = PretrainConfig(out="unused", image_hw=(32, 24), vae=VaeConfig(channels=(8, 16)),
                            unet=UnetConfig(channels=(16, 32), context_dim=16))
    ldm = build_ldm(config, ["a tall person in a red jacket", "a short person with a backpack"])
    return save_ldm(ldm, tmp_path_factory.mktemp("ldm") / "tiny_ldm")


@pytest.fixture(scope="session")
def tiny_ldm(tiny_ldm_path):
    from edgereid.diffusion.ldm import load_ldm

    return load_ldm(tiny_ldm_path).freeze()
