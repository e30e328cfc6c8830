"""StableKeypoints' map capture and losses on a tiny random UNet (``methods.md`` §3.8)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from edgereid.errors import ConfigError  # noqa: E402
from edgereid.methods.stable_keypoints import geometry  # noqa: E402
from edgereid.methods.stable_keypoints.attention import capture_token_maps, stack_maps  # noqa: E402
from edgereid.methods.stable_keypoints.learning import StableKeypointsConfig, TokenMaps, training_losses  # noqa: E402
from tests.methods.stable_keypoints.conftest import TINY_LAYERS  # noqa: E402

MAP_HW = (16, 12)


def _inputs(ldm, tokens=20, batch=2):
    torch.manual_seed(1)
    latents = torch.randn(batch, 4, 16, 12)
    context = torch.randn(batch, tokens, ldm.context_dim)
    return latents, context


def test_maps_are_a_distribution_over_tokens_and_only_named_layers_are_hooked(tiny_ldm):
    unet = tiny_ldm.unet
    latents, context = _inputs(tiny_ldm)
    before = dict(unet.attn_processors)
    reference = unet(latents, 1, context).sample
    with capture_token_maps(unet, TINY_LAYERS[:1], MAP_HW, (16, 12)) as store:
        hooked = [n for n, p in unet.attn_processors.items() if type(p).__name__ == "TokenMapProcessor"]
        output = unet(latents, 1, context).sample
    assert hooked == ["up_blocks.1.attentions.0.transformer_blocks.0.attn2.processor"]
    assert len(store) == 1
    maps = stack_maps(store, MAP_HW)
    assert maps.shape == (2, 20, *MAP_HW)
    assert torch.allclose(maps.sum(1), torch.ones(2, *MAP_HW), atol=1e-5)
    assert torch.equal(output, reference)  # the UNet's own result is untouched by the capture
    assert unet.attn_processors == before  # and the hook is gone afterwards


def test_hook_is_removed_after_an_error(tiny_ldm):
    unet = tiny_ldm.unet
    before = dict(unet.attn_processors)
    with pytest.raises(RuntimeError):
        with capture_token_maps(unet, TINY_LAYERS, MAP_HW, (16, 12)):
            raise RuntimeError("boom")
    assert unet.attn_processors == before


def test_unknown_layer_name_is_a_config_error(tiny_ldm):
    with pytest.raises(ConfigError, match="up_blocks.7"):
        with capture_token_maps(tiny_ldm.unet, ("up_blocks.7.attentions.0",), MAP_HW, (16, 12)):
            pass


def test_losses_reach_the_tokens_and_no_diffusion_weight(tiny_ldm):
    embedding = torch.nn.Parameter(torch.randn(1, 20, tiny_ldm.context_dim))
    token_maps = TokenMaps(tiny_ldm, embedding, TINY_LAYERS, MAP_HW, timestep=1)
    config = StableKeypointsConfig(ldm="x", crops="x", out="x", num_tokens=20, candidates=6, top_k=3)
    pixels = torch.rand(2, 3, 32, 24) * 2 - 1
    terms = training_losses(token_maps, pixels, config, torch.Generator().manual_seed(0))
    sum(terms.values()).backward()
    assert embedding.grad is not None and embedding.grad.abs().sum() > 0
    frozen = [n for module in (tiny_ldm.unet, tiny_ldm.vae) for n, p in module.named_parameters()
              if p.grad is not None or p.requires_grad]
    assert frozen == []


def test_gaussian_target_peaks_at_one_on_the_argmax_pixel_centre():
    maps = torch.zeros(1, 3, 10, 8)
    maps[0, 0, 7, 2] = maps[0, 1, 0, 5] = maps[0, 2, 4, 4] = 1.0
    centres = geometry.argmax_xy(maps)
    assert centres[0].tolist() == [[2, 7], [5, 0], [4, 4]]  # (x, y), not (row, col)
    target = geometry.gaussian_maps(centres, (10, 8), sigma=2.0)
    assert torch.equal(geometry.argmax_xy(target), centres)
    assert target[0, 0, 7, 2] == 1.0 and target.max() == 1.0


def test_inverse_warp_round_trips_a_map_in_the_interior():
    generator = torch.Generator().manual_seed(3)
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, 48), torch.linspace(-1, 1, 40), indexing="ij")
    smooth = torch.stack([torch.sin(2 * xs) * torch.cos(3 * ys), xs * ys])[None].repeat(4, 1, 1, 1)
    theta = geometry.random_affine(4, (48, 40), generator)
    back = geometry.warp(geometry.warp(smooth, theta), geometry.invert_affine(theta))
    inside = geometry.warp(geometry.warp(torch.ones(4, 1, 48, 40), theta), geometry.invert_affine(theta)) > 0.999
    assert inside.float().mean() > 0.3
    assert (back - smooth).abs()[inside.expand_as(smooth)].max() < 0.05


def test_equivariance_loss_is_zero_for_equivariant_maps_and_not_otherwise():
    generator = torch.Generator().manual_seed(4)
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, 64), torch.linspace(-1, 1, 48), indexing="ij")
    image = torch.stack([torch.exp(-((xs - 0.2) ** 2 + (ys + 0.3) ** 2) * 8), torch.cos(2 * xs + ys)])[None]
    image = image.repeat(3, 1, 1, 1)
    theta = geometry.random_affine(3, (64, 48), generator)
    identity_maps = lambda x: x  # a map of the image itself is equivariant by construction
    loss = geometry.equivariance_loss(identity_maps(image), identity_maps(geometry.warp(image, theta)), theta)
    shuffled = geometry.equivariance_loss(image, image.flip(-1), theta)
    # only resampling error is left (two bilinear warps): well under 1% of a non-equivariant map's loss
    assert loss < 0.01 * shuffled


def test_official_selection_starts_furthest_point_sampling_from_the_furthest_pair():
    generator = torch.Generator().manual_seed(5)
    points = torch.rand(30, 2, generator=generator) * 50
    chosen = geometry.furthest_point_sampling(points, 8)
    distances = torch.cdist(points, points)
    assert len(set(chosen.tolist())) == 8
    assert distances[chosen[0], chosen[1]] == distances.max() and chosen[0] < chosen[1]
    for i in range(2, 8):
        gap = distances[:, chosen[:i]].min(1).values  # distance of every point to the chosen set
        assert gap[chosen[i]] == gap.max()
    # points that all coincide with chosen ones are still chosen once each
    assert sorted(geometry.furthest_point_sampling(torch.tensor([[0.0, 0], [9, 9], [0, 0], [9, 9]]), 4).tolist()) \
        == [0, 1, 2, 3]


def _peaked(peaks_xy: list[tuple[int, int]], hw=(12, 12), flat: tuple[int, ...] = ()) -> torch.Tensor:
    """Maps ``[T, H, W]`` with one sharp peak per token, except the tokens in ``flat`` (uniform maps)."""
    maps = geometry.gaussian_maps(torch.tensor(peaks_xy), hw, sigma=1.0)
    maps[list(flat)] = 0.1
    return maps


def test_official_selection_ranks_on_original_maps_and_samples_on_warped_peaks():
    # tokens 0-2 are sharp in the original image; on it 0 and 1 are far apart and 2 sits next to 0
    original = _peaked([(1, 1), (10, 10), (2, 1), (6, 6)], flat=(3,))
    # on the warped image token 0 is flat (its argmax the corner) and 3 is sharp: 0 and 2 are the furthest pair
    warped = _peaked([(1, 1), (3, 3), (11, 11), (5, 5)], flat=(0,))
    chosen = geometry.select_tokens(original, candidates=3, k=2, sigma=1.0, fps_maps=warped)
    assert sorted(chosen.tolist()) == [0, 2]  # ranked on the original (3 left out), FPS on warped peaks
    assert sorted(geometry.select_tokens(original, 3, 2, 1.0).tolist()) == [0, 1]
    assert sorted(geometry.select_tokens(warped, 3, 2, 1.0).tolist()) == [1, 2]


class _FixedMaps:
    """Stands in for TokenMaps: the original images' maps and the warped images' maps, fixed."""

    device = torch.device("cpu")

    def __init__(self, original: torch.Tensor, warped: torch.Tensor) -> None:
        self.both = torch.cat([original, warped])

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        assert len(pixels) == len(self.both)
        return self.both


def test_official_selection_localisation_loss_is_on_the_original_maps_only():
    original = _peaked([(1, 1), (10, 10), (2, 1), (6, 6)], flat=(3,))[None] * 0.5  # not peak 1: a loss to pay
    warped = _peaked([(1, 1), (3, 3), (11, 11), (5, 5)])[None] * 0.2
    config = StableKeypointsConfig(ldm="x", crops="x", out="x", num_tokens=4, candidates=3, top_k=2, sigma=1.0)
    terms = training_losses(_FixedMaps(original, warped), torch.zeros(1, 3, 12, 12), config,
                            torch.Generator().manual_seed(0))
    expected = geometry.localisation_loss(original[:, [0, 2]], 1.0) * config.localisation_weight
    assert torch.isclose(terms["localisation"], expected)


def test_noise_schedule_is_stable_diffusions(tiny_ldm):
    from diffusers import DDPMScheduler

    reference = DDPMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                              beta_schedule="scaled_linear")
    assert torch.allclose(tiny_ldm.scheduler.betas, reference.betas)
    assert np.isclose(float(tiny_ldm.scheduler.betas[0]), 0.00085) and np.isclose(float(tiny_ldm.scheduler.betas[-1]), 0.012)


def test_device_handling_on_the_cpu(tiny_ldm):
    from edgereid.methods.stable_keypoints.learning import resolve_device

    cpu = resolve_device("cpu")
    assert cpu.type == "cpu" and resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA GPU"):
            resolve_device("cuda")
    embedding = torch.nn.Parameter(torch.randn(1, 20, tiny_ldm.context_dim))
    maps = TokenMaps(tiny_ldm, embedding, TINY_LAYERS, MAP_HW, timestep=1, device=cpu, mixed_precision=True)
    out = maps(torch.rand(2, 3, 32, 24) * 2 - 1)
    assert out.device.type == "cpu" and out.dtype == torch.float32  # BF16 inside, float32 maps out
    torch.testing.assert_close(out.sum(1), torch.ones(2, *MAP_HW), atol=2e-2, rtol=0)
    assert maps.generator.device.type == "cpu" and next(tiny_ldm.unet.parameters()).device.type == "cpu"
