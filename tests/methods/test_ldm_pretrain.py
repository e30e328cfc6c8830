"""`edgereid diffusion pretrain` on a tiny model and world: the conditioning gate is measured and stored, `init`
continues a model with its VAE kept, and `diffusion check` exits by the gate."""

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from edgereid.cli import main  # noqa: E402

TINY = ["--set", "image_hw=[32, 32]", "--set", "vae.channels=[8, 16]", "--set", "unet.channels=[16, 32]",
        "--set", "unet.context_dim=16", "--set", "vae.optim.epochs=1", "--set", "unet.optim.epochs=1",
        "--set", "data={seed: 5, identities: 10, cameras: 2, frames_per_camera: 10, pace: 4.0, people_per_frame: 4}",
        "--set", "samples=false"]


def test_pretrain_measures_the_gate_and_init_continues_with_the_vae_kept(tmp_path, capsys):
    from safetensors.torch import load_file

    first, second = tmp_path / "first", tmp_path / "second"
    assert main(["diffusion", "pretrain", "--config", "samples/configs/ldm_world.yaml", "--set", f"out={first}",
                 *TINY]) == 0
    info = json.loads((first / "edgereid.json").read_text())
    assert info["resize"] == "stretch" and set(info["conditioning"]) >= {"true_caption", "wrong_caption", "gain"}
    assert "denoising error on 256 held-out crops" in capsys.readouterr().out
    assert main(["diffusion", "pretrain", "--config", "samples/configs/ldm_world.yaml", "--set", f"out={second}",
                 "--set", f"init={first}", *TINY]) == 0
    vae = "vae/diffusion_pytorch_model.safetensors"
    unet = "unet/diffusion_pytorch_model.safetensors"
    assert all(torch.equal(a, b) for a, b in zip(load_file(first / vae).values(), load_file(second / vae).values()))
    assert not all(torch.equal(a, b) for a, b in zip(load_file(first / unet).values(),
                                                     load_file(second / unet).values()))
    capsys.readouterr()
    code = main(["diffusion", "check", "--ldm", str(second), "--crops", "32"])
    said = capsys.readouterr().out
    assert "on 32 held-out crops" in said and code == (0 if said.rstrip().endswith("PASSED") else 1)
    assert main(["diffusion", "pretrain", "--config", "samples/configs/ldm_world.yaml", "--set", f"out={second}",
                 "--set", f"init={first}", *TINY, "--set", "image_hw=[48, 48]"]) == 2
    assert "does not read crops as this config does" in capsys.readouterr().err
