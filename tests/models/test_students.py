from pathlib import Path

import numpy as np
import pytest
import torch

from edgereid.errors import CheckpointError, RegistryError
from edgereid.models.checkpoint import load_checkpoint, save_checkpoint
from edgereid.models.keypoints import soft_argmax
from edgereid.models import create_model, list_models
from edgereid.registry import register_model


def test_registry_lists_and_filters():
    assert {"reid_mobilenet_w050", "kp_mobilenet_w050", "face_mobilefacenet"} <= set(list_models())
    assert list_models("test_*") == ["test_face", "test_face_teacher", "test_keypoints", "test_reid"]
    assert list_models(task="face") == ["face_mobilefacenet", "face_mobilefacenet_112", "face_mobilefacenet_32",
                                         "face_teacher_64", "iresnet100", "iresnet18", "iresnet50", "test_face",
                                         "test_face_teacher"]


def test_duplicate_and_unknown_names_are_errors():
    with pytest.raises(RegistryError, match="registered twice"):
        register_model("test_reid", task="reid")(lambda: None)
    with pytest.raises(RegistryError, match="did you mean test_reid"):
        create_model("test_ried")


@pytest.mark.parametrize("name, low, high", [("reid_mobilenet_w050", 0.3e6, 2e6),
                                             ("kp_mobilenet_w050", 0.1e6, 2e6),
                                             ("face_mobilefacenet", 0.3e6, 2e6)])
def test_default_students_fit_the_edge_budget(name, low, high):
    model = create_model(name)
    params = sum(p.numel() for p in model.parameters())
    assert low <= params <= high
    card = model.card(name)
    assert card.input.height * card.input.width <= 256 * 192


@pytest.mark.parametrize("name", ["test_reid", "test_keypoints", "test_face"])
def test_students_produce_the_contract_outputs(name):
    model = create_model(name).eval()
    card = model.card(name)
    x = torch.randn(3, 3, card.input.height, card.input.width)
    with torch.no_grad():
        outputs = model(x)
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    for spec, tensor in zip(card.outputs, outputs):
        assert tuple(tensor.shape) == (3, *spec.dims), spec.name
        if spec.kind == "embedding":
            np.testing.assert_allclose(tensor.norm(dim=1).numpy(), 1.0, rtol=1e-5)


def test_soft_argmax_finds_a_peak_in_input_pixels():
    heatmaps = torch.zeros(1, 2, 16, 12)
    heatmaps[0, 0, 5, 7] = 1.0
    heatmaps[0, 1, 0, 0] = 1.0
    coords, confidence = soft_argmax(heatmaps, stride=4, beta=40.0)
    # cell j has its centre at (j + 0.5) * 4 - 0.5 input pixels
    np.testing.assert_allclose(coords[0, 0].numpy(), [29.5, 21.5], atol=1e-3)
    np.testing.assert_allclose(coords[0, 1].numpy(), [1.5, 1.5], atol=1e-3)
    np.testing.assert_allclose(confidence.numpy(), [[1.0, 1.0]])


def test_checkpoint_rebuilds_the_model(tmp_path):
    torch.manual_seed(0)
    model = create_model("test_reid", embedding_dim=24).eval()
    path = save_checkpoint(model, tmp_path / "m.safetensors")
    rebuilt, card = load_checkpoint(path)
    rebuilt.eval()
    x = torch.randn(2, 3, 64, 32)
    torch.testing.assert_close(model(x), rebuilt(x))
    assert card.embedding_dim == 24 and rebuilt.constructor_args == {"embedding_dim": 24}


def test_checkpoint_that_does_not_match_its_architecture(tmp_path):
    from safetensors.torch import load_file, save_file

    path = save_checkpoint(create_model("test_reid"), tmp_path / "m.safetensors")
    state = load_file(str(path))
    state["bnneck.weight"] = torch.ones(7)
    from safetensors import safe_open

    with safe_open(str(path), "pt") as handle:
        metadata = handle.metadata()
    save_file(state, str(tmp_path / "bad.safetensors"), metadata=metadata)
    with pytest.raises(CheckpointError, match="do not fit model 'test_reid'") as info:
        load_checkpoint(tmp_path / "bad.safetensors")
    assert "bnneck.weight" in str(info.value)


def test_checkpoint_without_header_or_not_safetensors(tmp_path):
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(CheckpointError, match="no edgereid header"):
        load_checkpoint(tmp_path / "plain.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\x80\x04not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        load_checkpoint(tmp_path / "junk.safetensors")


def test_header_arguments_cannot_make_torch_allocate_gigabytes(tmp_path):
    """A header edited to ask for a 50,000,000-wide embedding is refused from the stored shapes, before the
    model (200 GB of weights at that width) is built."""
    import json
    import resource

    from safetensors.torch import load_file, save_file

    from edgereid.models.checkpoint import read_checkpoint_header

    source = Path(__file__).resolve().parents[2] / "samples/models/reid/model.safetensors"
    header = read_checkpoint_header(source)
    header["edgereid.args"] = json.dumps({**json.loads(header["edgereid.args"]), "embedding_dim": 50_000_000})
    save_file(load_file(str(source)), str(tmp_path / "evil.safetensors"), metadata=header)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(CheckpointError, match="do not fit"):
        load_checkpoint(tmp_path / "evil.safetensors")
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # KiB: under 200 MB more
