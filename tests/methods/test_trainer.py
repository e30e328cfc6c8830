"""The shared training loop: schedules, optimisers, mixed precision and clipping switches."""

import pytest

torch = pytest.importorskip("torch")

from edgereid.errors import ConfigError  # noqa: E402
from edgereid.methods.run_config import OptimConfig  # noqa: E402
from edgereid.methods.trainer import fit, lr_factor  # noqa: E402


def test_the_official_dcac_schedule_warms_up_from_a_tenth_and_steps_down_at_the_milestones():
    optim = OptimConfig(epochs=60, warmup_epochs=10, warmup_start=0.1, schedule="multistep", milestones=(30, 50))
    per_epoch = 5
    factor = [lr_factor(epoch * per_epoch, optim, per_epoch) for epoch in range(60)]
    assert factor[0] == pytest.approx(0.1 + 0.9 / 50) and factor[5] == pytest.approx(0.1 + 0.9 * 26 / 50)
    assert factor[10] == factor[29] == 1.0
    assert factor[30] == pytest.approx(0.1) and factor[49] == pytest.approx(0.1) and factor[50] == pytest.approx(0.01)


def test_the_default_schedule_is_unchanged_warm_up_then_cosine():
    optim = OptimConfig(epochs=4, warmup_epochs=1, final_lr_fraction=0.01)
    assert lr_factor(0, optim, 10) == pytest.approx(0.1) and lr_factor(9, optim, 10) == pytest.approx(1.0)
    assert lr_factor(10, optim, 10) == pytest.approx(1.0) and lr_factor(39, optim, 10) < 0.02


@pytest.mark.parametrize("settings", [dict(optimizer="adam", grad_clip=0.0), dict(mixed_precision=True)])
def test_adam_without_clipping_and_bf16_autocast_train(settings):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))
    x, y = torch.randn(64, 8), torch.randn(64, 1)
    seen = []

    def step(_):
        out = model(x)
        seen.append(out.dtype)
        return {"mse": torch.nn.functional.mse_loss(out.float(), y)}

    history = fit(model, model.parameters(), lambda _: range(10), step,
                  OptimConfig(epochs=3, lr=0.01, threads=1, **settings), 10)
    assert history[-1]["mse"] < 0.8 * history[0]["mse"]
    assert seen[0] == (torch.bfloat16 if settings.get("mixed_precision") else torch.float32)


def test_unknown_optimisers_and_unordered_milestones_are_refused():
    with pytest.raises(ConfigError, match="unknown optimiser"):
        OptimConfig(optimizer="rmsprop")
    with pytest.raises(ConfigError, match="milestones"):
        OptimConfig(schedule="multistep", milestones=(50, 30))


def test_sgd_takes_its_momentum_from_the_config():
    import torch

    from edgereid.methods.trainer import fit

    layer = torch.nn.Linear(2, 1)
    optim = OptimConfig(optimizer="sgd", lr=0.1, momentum=0.5, weight_decay=0.0, warmup_epochs=0, epochs=1,
                        schedule="multistep", grad_clip=0.0)
    steps = []

    def step(_):
        steps.append(1)
        return {"loss": layer(torch.ones(1, 2)).sum()}

    before = layer.weight.detach().clone()
    fit(layer, list(layer.parameters()), lambda epoch: iter([0, 1]), step, optim, 2, "sgd")
    # two SGD steps with momentum 0.5 on d(w.x + b)/dw = 1: w moves by 0.1 * (1 + 1.5) = 0.25 per weight
    assert len(steps) == 2
    torch.testing.assert_close(layer.weight.detach(), before - 0.25)


def test_prefetch_is_refused_for_a_method_whose_step_draws_its_own_random_numbers():
    # such a step (supervised ReID, ReID distillation) shares its generator with the batch sampler: on a loader
    # thread the two would interleave by thread timing and the run would stop being reproducible
    layer = torch.nn.Linear(2, 1)

    def step(_):
        return {"loss": layer(torch.ones(1, 2)).sum()}

    with pytest.raises(ConfigError, match="prefetch") as caught:
        fit(layer, list(layer.parameters()), lambda epoch: iter([0, 1]), step, OptimConfig(prefetch=2, epochs=1), 2,
            "supervised")
    assert caught.value.fix == "set optim.prefetch: 0"
    prepared = fit(layer, list(layer.parameters()), lambda epoch: iter([0, 1]), step,
                   OptimConfig(prefetch=2, epochs=1), 2, "with prepare", prepare=lambda index: index)
    assert len(prepared) == 1
