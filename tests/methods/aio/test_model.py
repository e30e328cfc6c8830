"""AIO's model and losses: the CPU test plan of ``methods.md`` §2.5, plus padding and masking details."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from edgereid.methods.aio.captions import ATTRIBUTE_WORDS, IGNORE, CaptionTokenizer
from edgereid.methods.aio.losses import feature_binding_loss, masked_attribute_loss
from edgereid.methods.aio.model import IMAGE_MODALITIES
from edgereid.errors import InputError


def _images(batch: int = 5) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return {m: torch.randn(batch, 3, 32, 16, generator=generator) for m in IMAGE_MODALITIES}


def _tokens(model) -> CaptionTokenizer:
    return CaptionTokenizer(model.encoder.tokenizer, model.encoder.special)


def test_frozen_encoder_gets_no_gradient_while_tokenizers_and_heads_do(tiny_aio, captions):
    model = tiny_aio.train()
    masked = _tokens(model).encode(captions, 0.5, np.random.default_rng(0))
    images = _images()
    feature, text_hidden = model.encode(images, masked)
    bn = model.bnneck(feature, images, masked)
    loss = model.classifier(bn).logsumexp(1).mean() + masked_attribute_loss(model.attribute_head(text_hidden),
                                                                             masked.targets)
    loss.backward()
    assert all(p.grad is None for p in model.encoder.parameters())
    assert not any(p.requires_grad for p in model.encoder.parameters())
    assert not model.encoder.training  # frozen: no dropout even when the model trains
    for part in (*model.tokenizers.values(), model.text_adapter, model.classifier, model.attribute_head):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters())
    assert model.cls.grad.abs().sum() > 0
    assert {id(p) for p in model.trainable_parameters()}.isdisjoint(id(p) for p in model.encoder.parameters())


def test_any_non_empty_subset_of_modalities_runs(tiny_aio, captions):
    model = tiny_aio.eval()
    images, text = _images(), _tokens(model).encode(captions)
    options = [*IMAGE_MODALITIES, "text"]
    for size in range(1, len(options) + 1):
        for subset in itertools.combinations(options, size):
            chosen = {m: images[m] for m in subset if m != "text"}
            feature, hidden = model.encode(chosen, text if "text" in subset else None)
            assert feature.shape == (5, model.embedding_dim) and torch.isfinite(feature).all()
            assert (hidden is not None) == ("text" in subset)
    with pytest.raises(InputError, match="at least one"):
        model.encode({})
    with pytest.raises(InputError, match="at least one"):
        model.encode({"thermal": images["ir"]})


def test_padding_changes_nothing(tiny_aio, captions):
    model = tiny_aio.eval()
    tokens = _tokens(model)
    alone = model.embed(text=tokens.encode(captions[:1]))
    padded = model.embed(text=tokens.encode([captions[0], captions[1] + " " + captions[2]]))[:1]
    assert tokens.encode([captions[0], captions[1] + " " + captions[2]]).keep[0].logical_not().any()
    torch.testing.assert_close(alone, padded, atol=1e-5, rtol=1e-5)


def test_binding_loss_is_lower_for_aligned_than_shuffled_features():
    generator = torch.Generator().manual_seed(1)
    labels = torch.arange(8).repeat_interleave(2)
    rgb = torch.randn(8, 32, generator=generator)[labels] + 0.3 * torch.randn(16, 32, generator=generator)
    shuffled_rgb = rgb[torch.randperm(16, generator=generator)]
    for sources in (None, torch.arange(16)):
        aligned = feature_binding_loss(rgb.clone(), rgb, labels, sources=sources)
        assert aligned < feature_binding_loss(shuffled_rgb, rgb, labels, sources=sources)
    other = rgb.clone().requires_grad_(True)
    anchor = rgb.clone().requires_grad_(True)
    feature_binding_loss(other + 0.1, anchor, labels).backward()
    assert anchor.grad is None and other.grad.abs().sum() > 0  # RGB is the anchor, not pulled


def test_binding_leaves_out_the_crop_a_view_was_made_from():
    generator = torch.Generator().manual_seed(4)
    labels = torch.tensor([0, 0, 1, 1])
    rgb, other = torch.randn(4, 16, generator=generator), torch.randn(4, 16, generator=generator)
    scores = torch.nn.functional.normalize(other, dim=1) @ torch.nn.functional.normalize(rgb, dim=1).t() / 0.1
    partner = torch.tensor([1, 0, 3, 2])
    expected = torch.stack([-(scores[i, partner[i]] - torch.logsumexp(scores[i, torch.arange(4) != i], 0))
                            for i in range(4)]).mean()
    torch.testing.assert_close(feature_binding_loss(other, rgb, labels, sources=torch.arange(4)), expected)
    duplicated = torch.tensor([7, 7, 2, 3])  # a crop drawn twice: its rows are not each other's positive
    assert feature_binding_loss(other, rgb, labels, sources=duplicated) == pytest.approx(
        float(torch.stack([-(scores[i, partner[i]] - torch.logsumexp(scores[i, torch.arange(4) != i], 0))
                           for i in (2, 3)]).mean()))
    assert not torch.isclose(feature_binding_loss(other, rgb, labels), expected)


def test_attribute_loss_ignores_unmasked_positions():
    generator = torch.Generator().manual_seed(2)
    logits = torch.randn(3, 7, len(ATTRIBUTE_WORDS), generator=generator)
    targets = torch.full((3, 7), IGNORE)
    targets[0, 2], targets[2, 5] = 4, 9
    changed = logits.clone()
    unmasked = targets == IGNORE
    changed[unmasked] = torch.randn(int(unmasked.sum()), len(ATTRIBUTE_WORDS), generator=generator) * 10
    assert masked_attribute_loss(logits, targets) == pytest.approx(float(masked_attribute_loss(changed, targets)))
    changed[0, 2] += torch.randn(len(ATTRIBUTE_WORDS), generator=generator)
    assert masked_attribute_loss(changed, targets) != pytest.approx(float(masked_attribute_loss(logits, targets)))
    assert masked_attribute_loss(logits, torch.full((3, 7), IGNORE)) == 0


def test_masking_hides_whole_attribute_words(tiny_aio, captions):
    tokens = _tokens(tiny_aio)
    plain = tokens.encode(captions)
    masked = tokens.encode(captions, 0.5, np.random.default_rng(3))
    mask_id = tiny_aio.encoder.special["[MASK]"]
    hidden = masked.ids == mask_id
    assert (hidden == (masked.targets != IGNORE)).all()  # targets exactly where the words are hidden
    assert hidden.any(1).all()  # at least one word per caption
    assert (masked.ids[~hidden] == plain.ids[~hidden]).all()
    vocabulary = tiny_aio.encoder.tokenizer.get_vocab()
    words = {index: word for word, index in vocabulary.items()}
    for row in range(len(captions)):
        for position in torch.nonzero(hidden[row]).flatten().tolist():
            assert words[int(plain.ids[row, position])] == ATTRIBUTE_WORDS[int(masked.targets[row, position])]
    assert plain.targets.eq(IGNORE).all() and (plain.ids[:, 0] == tiny_aio.encoder.special["[CLS]"]).all()


def test_tiny_vocabulary_covers_every_caption_word(tiny_aio):
    from edgereid.data.synthetic import World, WorldConfig

    tokens = _tokens(tiny_aio)
    world = World(WorldConfig(seed=11, num_identities=200, num_cameras=1))
    ids = tokens.encode([world.identity(pid).text for pid in range(1, 201)]).ids
    assert not (ids == tiny_aio.encoder.tokenizer.token_to_id("[UNK]")).any()


def test_stature_is_never_masked(tiny_aio):
    tokens = _tokens(tiny_aio)
    caption = "a short person with short black hair, wearing a red jacket"
    for seed in range(20):
        masked = tokens.encode([caption], 1.0, np.random.default_rng(seed))
        assert masked.ids[0, 2] != tiny_aio.encoder.special["[MASK]"]  # [CLS] a short ...
        assert masked.ids[0, 5] == tiny_aio.encoder.special["[MASK]"]  # ... with short (hair)
