import dataclasses
import json

import numpy as np
import pytest

from edgereid.card import (CARD_METADATA_KEY, AcceptThreshold, InputSpec, KeypointReadout, ModelCard,
                           OutputSpec, Provenance, read_card, write_card)
from edgereid.errors import ModelCardError


def make_card(**changes) -> ModelCard:
    card = ModelCard(name="x", task="reid", input=InputSpec(height=64, width=32, resize="letterbox"),
                     outputs=(OutputSpec("embedding", "embedding", (16,)),), embedding_dim=16,
                     accept_threshold=AcceptThreshold(0.61, 1e-3),
                     provenance=Provenance(checkpoint_sha256="ab" * 32))
    return card.replace(**changes)


def test_card_round_trips_through_json():
    card = make_card()
    assert ModelCard.from_json(card.to_json()) == card
    readout = KeypointReadout(matrix=np.eye(4).tolist(), joint_names=("a", "b"))
    kp = ModelCard(name="k", task="keypoints", input=InputSpec(),
                   outputs=(OutputSpec("coords", "coords", (2, 2)), OutputSpec("confidence", "confidence", (2,))),
                   readout=readout, skeleton=((0, 1),))
    assert ModelCard.from_json(kp.to_json()) == kp


def test_card_round_trips_through_onnx(tiny_models, tmp_path):
    card = read_card(tiny_models["test_reid"]["onnx"])
    assert card.name == "test_reid" and card.embedding_dim == 32
    assert len(card.provenance.checkpoint_sha256) == 64
    changed = card.replace(accept_threshold=AcceptThreshold(0.5, 1e-2))
    out = write_card(tiny_models["test_reid"]["onnx"], changed, tmp_path / "copy.onnx")
    assert read_card(out) == changed


def test_onnx_without_card_is_refused_with_the_fix(tiny_models, tmp_path):
    import onnx

    model = onnx.load(str(tiny_models["test_reid"]["onnx"]))
    del model.metadata_props[:]
    path = tmp_path / "bare.onnx"
    onnx.save(model, str(path))
    with pytest.raises(ModelCardError, match="carries no edgereid model card") as info:
        read_card(path)
    assert "edgereid card attach" in str(info.value)


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.update(task="pose"), "invalid task"),
    (lambda d: d["input"].update(resize="crop"), "invalid resize policy"),
    (lambda d: d["input"].update(colour="RGB"), "unknown keys"),
    (lambda d: d.update(schema_version=99), "newer"),
    (lambda d: d.update(outputs=[]), "needs an 'embedding' output"),
])
def test_bad_cards_name_the_problem(mutate, message):
    data = make_card().to_dict()
    mutate(data)
    with pytest.raises(ModelCardError, match=message):
        ModelCard.from_dict(data)


def test_invalid_json_card():
    with pytest.raises(ModelCardError, match="not valid JSON"):
        ModelCard.from_json("{not json")


def test_embedding_space_changes_with_checkpoint():
    a = make_card()
    b = make_card(provenance=Provenance(checkpoint_sha256="cd" * 32))
    assert a.embedding_space() == make_card().embedding_space()
    assert a.embedding_space() != b.embedding_space()
    assert json.loads(a.to_json())["input"]["resize"] == "letterbox"
    assert CARD_METADATA_KEY == "edgereid.card"


@pytest.mark.parametrize("change, message", [
    (lambda c: c.replace(input=dataclasses.replace(c.input, height=c.input.height + 8)), "input shape"),
    (lambda c: c.replace(input=dataclasses.replace(c.input, name="pixels")), "input name"),
    (lambda c: c.replace(input=dataclasses.replace(c.input, dtype="float16")), "input dtype"),
    (lambda c: c.replace(outputs=(OutputSpec("feat", "embedding", c.outputs[0].dims),)), "output 'feat'"),
    (lambda c: c.replace(outputs=(OutputSpec(c.outputs[0].name, "embedding", (7,)),), embedding_dim=7), "dims"),
])
def test_a_card_that_disagrees_with_its_graph_is_refused_when_the_model_loads(tiny_models, tmp_path, change, message):
    from edgereid.card import read_card, write_card
    from edgereid.pipeline import Pipeline
    from edgereid.runtime.backends import load_backend

    source = tiny_models["test_reid"]["onnx"]
    lying = write_card(source, change(read_card(source)), tmp_path / "lying.onnx")
    with pytest.raises(ModelCardError, match=message):
        load_backend(lying)
    with pytest.raises(ModelCardError, match="disagrees with its graph"):
        Pipeline({"reid_model": str(lying)})


def test_card_attach_refuses_a_card_for_another_input_size(tiny_models):
    from edgereid.card_tools import card_for_onnx

    with pytest.raises(ModelCardError, match="input shape"):
        card_for_onnx(tiny_models["test_reid"]["onnx"], task="reid", height=999, width=64)


@pytest.mark.parametrize("spec, message", [
    (dict(height=100_000, width=128), "input size out of range"), (dict(height=256.5, width=128), "out of range"),
    (dict(mean=(float("nan"), 0.0, 0.0)), "finite"),
])
def test_card_budgets(spec, message):
    with pytest.raises(ModelCardError, match=message):
        InputSpec(**spec)
    with pytest.raises(ModelCardError, match="out-of-range dims"):
        OutputSpec("heat", "heatmaps", (100_000, 1000, 1000))
