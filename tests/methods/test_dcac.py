"""DCAC's gradient path, memory and condition on tiny random models (``methods.md`` §1.8)."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from torch.nn import functional as F  # noqa: E402

from edgereid.methods.dcac import ClusterMemory, IdPrompts, denoising_loss  # noqa: E402
from edgereid.methods.lora import DCAC_TARGETS, LoraLinear, add_lora  # noqa: E402
from edgereid.methods.losses import label_smoothed_ce  # noqa: E402
from edgereid.models import create_model  # noqa: E402

NUM_IDS = 6


@pytest.fixture()
def parts(tiny_ldm_path):
    from edgereid.diffusion.ldm import load_ldm

    torch.manual_seed(0)
    ldm = load_ldm(tiny_ldm_path).freeze()
    lora = add_lora(ldm.unet, rank=4)
    encoder = create_model("test_reid", num_classes=NUM_IDS)
    prompts = IdPrompts(NUM_IDS, ldm.context_dim)
    return ldm, lora, encoder, prompts


def _ldm_loss(parts, detach_probabilities=False):
    ldm, _, encoder, prompts = parts
    bn = encoder.bnneck(encoder.features(torch.randn(4, 3, 64, 32)))
    logits = encoder.classifier(bn)
    context = prompts(logits.detach() if detach_probabilities else logits, tau=0.6)
    return denoising_loss(ldm, torch.rand(4, 3, 32, 24) * 2 - 1, context, torch.Generator().manual_seed(0))


def test_denoising_loss_alone_reaches_encoder_bnneck_and_classifier(parts):
    _, _, encoder, _ = parts
    _ldm_loss(parts).backward()
    for module in (encoder.trunk, encoder.bnneck, encoder.classifier):
        grads = [p.grad for p in module.parameters() if p.requires_grad]
        assert grads and all(g is not None for g in grads) and sum(g.abs().sum() for g in grads) > 0


def test_detached_probabilities_cut_the_feedback(parts):
    _, _, encoder, prompts = parts
    _ldm_loss(parts, detach_probabilities=True).backward()
    assert all(p.grad is None for p in encoder.parameters())
    assert prompts.prompts.grad is not None


def test_frozen_diffusion_weights_get_no_gradient_while_lora_and_prompts_do(parts):
    ldm, lora, _, prompts = parts
    _ldm_loss(parts).backward()
    base = [n for n, p in ldm.unet.named_parameters() if "lora_" not in n and (p.grad is not None or p.requires_grad)]
    assert base == []
    assert all(p.grad is None for p in ldm.vae.parameters())
    assert prompts.prompts.grad.abs().sum() > 0
    assert all(p.grad is not None for p in lora) and sum(p.grad.abs().sum() for p in lora) > 0
    adapted = {n.split(".", 3)[-1] for n, m in ldm.unet.named_modules() if isinstance(m, LoraLinear)}
    suffixes = {next(t for t in DCAC_TARGETS if name.endswith(t)) for name in adapted}
    assert suffixes == set(DCAC_TARGETS)  # every official target, self- and cross-attention alike


def test_lora_starts_as_the_frozen_layer():
    torch.manual_seed(1)
    base = torch.nn.Linear(8, 5)
    x = torch.randn(3, 8)
    assert torch.equal(LoraLinear(base, rank=2)(x), base(x))


def test_condition_limits_in_tau():
    torch.manual_seed(2)
    prompts = IdPrompts(NUM_IDS, 16)
    logits = torch.randn(3, NUM_IDS)
    sharp = prompts(logits, tau=1e-4)[:, 0]
    flat = prompts(logits, tau=1e6)[:, 0]
    assert torch.allclose(sharp, prompts.prompts[logits.argmax(1)], atol=1e-5)
    assert torch.allclose(flat, prompts.prompts.mean(0).expand(3, -1), atol=1e-4)


def test_memory_moves_toward_the_least_similar_sample_and_stays_unit():
    torch.manual_seed(3)
    memory = ClusterMemory(3, 8, momentum=0.2)
    feats = torch.randn(30, 8)
    labels = torch.arange(30) % 3
    memory.rebuild(feats, labels)
    assert torch.allclose(memory.prototypes.norm(dim=1), torch.ones(3))
    before = memory.prototypes.clone()
    unit = F.normalize(torch.randn(6, 8), dim=1)
    batch_labels = torch.tensor([0, 0, 0, 1, 1, 2])
    memory.update_hard(unit, batch_labels)
    assert torch.allclose(memory.prototypes.norm(dim=1), torch.ones(3), atol=1e-6)
    members = unit[:3]
    hardest = members[(members @ before[0]).argmin()]
    expected = F.normalize(0.2 * before[0] + 0.8 * hardest, dim=0)
    assert torch.allclose(memory.prototypes[0], expected, atol=1e-6)


def test_memory_loss_gradient_is_softmax_minus_onehot_times_memory():
    torch.manual_seed(4)
    memory = ClusterMemory(4, 8, temperature=0.01)
    memory.rebuild(F.normalize(torch.randn(8, 8), dim=1), torch.arange(8) % 4)
    unit = F.normalize(torch.randn(2, 8), dim=1).requires_grad_(True)
    labels = torch.tensor([1, 3])
    memory.loss(unit, labels).backward()
    probs = F.softmax(unit.detach() @ memory.prototypes.t() / 0.01, dim=1)
    expected = (probs - F.one_hot(labels, 4)) @ memory.prototypes / 0.01 / 2
    assert torch.allclose(unit.grad, expected, atol=1e-4)


def test_label_smoothed_ce_of_uniform_logits_is_log_n():
    loss = label_smoothed_ce(torch.zeros(5, NUM_IDS), torch.arange(5) % NUM_IDS)
    assert math.isclose(float(loss), math.log(NUM_IDS), rel_tol=1e-6)
    assert np.isfinite(float(loss))


def _lagging_bn_encoder(crops, spec, steps=12):
    """A BatchNorm encoder trained briefly from scratch at a high rate: its running statistics lag its batch
    statistics, as after the first epochs of a real run."""
    from edgereid.ops.preprocess import normalise_batch

    torch.manual_seed(0)
    model = create_model("test_reid", num_classes=NUM_IDS)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    labels = torch.from_numpy(crops.pids)
    for step in range(steps):
        rows = np.random.default_rng(step).choice(len(crops), 16, replace=False)
        bn = model.bnneck(model.features(torch.from_numpy(normalise_batch(crops.images[rows], spec))))
        loss = F.cross_entropy(model.classifier(bn), labels[rows])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model


def test_the_pcl_memory_lives_in_the_space_the_loss_reads():
    """Memory features agree with the train-mode features the PCL loss compares them with (the old eval-mode
    memory had cosine near 0 to them early in training), and building them leaves BN's running statistics as
    they were."""
    from edgereid.data.scene_crops import CropSet
    from edgereid.methods.dcac import memory_features
    from edgereid.ops.preprocess import normalise_batch

    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (64, 64, 32, 3), dtype=np.uint8)
    crops = CropSet(images, np.arange(64) % NUM_IDS, np.zeros(64, int))
    spec = create_model("test_reid").card("test_reid").input
    model = _lagging_bn_encoder(crops, spec)
    before = {name: value.clone() for name, value in model.named_buffers()}
    memory = memory_features(model, crops, spec, 16, np.random.default_rng(0))
    for name, value in model.named_buffers():
        assert torch.equal(value, before[name]), name
    model.train()
    with torch.no_grad():
        train_mode = model.bnneck(model.features(torch.from_numpy(normalise_batch(images[:16], spec))))
        model.eval()
        eval_mode = model.bnneck(model.features(torch.from_numpy(normalise_batch(images[:16], spec))))
    agreement = F.cosine_similarity(memory[:16], train_mode).mean()
    old_agreement = F.cosine_similarity(eval_mode, train_mode).mean()
    assert agreement > 0.8 and old_agreement < agreement - 0.3, (float(agreement), float(old_agreement))


def test_memory_prototypes_are_the_normalised_mean_of_normalised_features():
    memory = ClusterMemory(2, 2)
    features = torch.tensor([[10.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    memory.rebuild(features, torch.tensor([0, 0, 1]))
    # class 0: one long and one short feature count alike (a plain sum would point almost along the long one)
    torch.testing.assert_close(memory.prototypes[0], torch.tensor([1.0, 1.0]) / math.sqrt(2))
    torch.testing.assert_close(memory.prototypes[1], torch.tensor([1.0, 1.0]) / math.sqrt(2))


def test_per_term_gradient_shares_are_recorded_and_a_silent_diffusion_term_warns():
    from edgereid.methods.dcac import warn_if_diffusion_is_silent
    from edgereid.methods.run_config import OptimConfig
    from edgereid.methods.trainer import fit

    torch.manual_seed(0)
    encoder, head = torch.nn.Linear(4, 4), torch.nn.Linear(4, 1)
    model = torch.nn.ModuleDict({"encoder": encoder, "head": head})

    def step(_):
        feature = encoder(torch.ones(2, 4))
        return {"big": head(feature).pow(2).mean(), "small": 1e-4 * feature.pow(2).mean(),
                "elsewhere": head.weight.pow(2).sum()}  # reaches no encoder parameter

    history = fit(model, model.parameters(), lambda _: range(4), step, OptimConfig(epochs=2, threads=1), 4,
                  probe_params=encoder.parameters())
    shares = history[0]["grad_shares"]
    assert shares["elsewhere"] == 0 and shares["small"] < 0.01 < shares["big"]
    assert abs(sum(shares.values()) - 1) < 1e-6 and set(history[1]["grad_norms"]) == set(shares)
    with pytest.warns(RuntimeWarning, match="diffusion loss is"):
        assert warn_if_diffusion_is_silent([{"grad_shares": {"ldm": 0.003}}]) == pytest.approx(0.003)
    assert warn_if_diffusion_is_silent([{"id": 1.0}]) is None
