import numpy as np
import onnx
import pytest
import torch

from edgereid.card import read_card
from edgereid.errors import ExportError
from edgereid.exporting.onnx_export import check_parity, export_onnx
from edgereid.models import create_model
from edgereid.runtime.backends import load_backend


@pytest.mark.parametrize("name", ["test_reid", "test_keypoints", "test_face"])
def test_export_is_checker_clean_dynamic_and_matches_torch(tiny_models, name):
    path = tiny_models[name]["onnx"]
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    card = read_card(path)
    backend = load_backend(path)
    from edgereid.models.checkpoint import load_checkpoint

    torch_model, _ = load_checkpoint(tiny_models[name]["checkpoint"])
    torch_model.eval()
    for batch in (1, 5):
        x = np.random.default_rng(batch).standard_normal((batch, 3, card.input.height, card.input.width))
        x = x.astype(np.float32)
        got = backend.infer(x)
        with torch.no_grad():
            want = torch_model(torch.from_numpy(x))
        want = want if isinstance(want, tuple) else (want,)
        for spec, expected in zip(card.outputs, want):
            if spec.kind == "embedding":
                cos = (got[spec.name] * expected.numpy()).sum(1)
                assert cos.min() >= 0.9999
            if spec.kind == "coords":
                assert np.abs(got[spec.name] - expected.numpy()).max() <= 0.5


def test_parity_failure_stops_the_export(tmp_path):
    model = create_model("test_reid")
    card = model.card("test_reid")
    export_onnx(model, card, tmp_path / "ok.onnx")
    other = create_model("test_reid").eval()  # different random weights
    with pytest.raises(ExportError, match="disagrees with torch"):
        check_parity(other, card, (tmp_path / "ok.onnx").read_bytes(), (1, 2))
