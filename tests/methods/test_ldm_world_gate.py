"""The committed world diffusion model listens to its captions (issue 19's gate) and meets the noise schedule at
unit variance on square, stretched crops."""

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from edgereid.diffusion.ldm import diffusion_spec, load_ldm  # noqa: E402
from edgereid.methods.ldm_pretrain import GATE_WORLD, conditioning_on_world  # noqa: E402

WORLD_MODEL = Path(__file__).resolve().parents[2] / "samples" / "models" / "ldm_world"


def test_the_world_diffusion_model_passes_the_conditioning_gate():
    ldm = load_ldm(WORLD_MODEL).freeze()
    assert ldm.resize == "stretch" and ldm.image_hw[0] == ldm.image_hw[1]
    report = conditioning_on_world(ldm)  # the gate's own 256 crops, as pretrain measured and recorded it
    assert report.passed, report.summary()


def test_the_world_diffusion_latents_have_unit_scale():
    from edgereid.data.scene_crops import scene_crops
    from edgereid.ops.preprocess import normalise_batch

    ldm = load_ldm(WORLD_MODEL).freeze()
    spec = diffusion_spec(ldm.image_hw, ldm.resize)
    crops, _ = scene_crops(GATE_WORLD, person_spec=spec, progress=False)
    with torch.no_grad():
        latents = ldm.encode(torch.from_numpy(normalise_batch(crops.images[:128], spec)))
    assert 0.8 < float(latents.std()) < 1.25  # the first world model's were 0.16
