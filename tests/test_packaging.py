"""What a wheel carries: the three default models found by name (the same bytes as samples/models), the
py.typed marker and the license."""

from pathlib import Path

import pytest

from edgereid.bundled import BUNDLED, bundled_model
from edgereid.card import read_card
from edgereid.errors import InputError

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("task", BUNDLED)
def test_the_bundled_models_are_found_by_name_and_are_the_sample_models(task):
    path = bundled_model(task)
    assert read_card(path).task == task
    assert path.read_bytes() == (REPO / "samples" / "models" / task / "model.onnx").read_bytes()


def test_an_unknown_bundled_model_is_a_typed_error():
    with pytest.raises(InputError, match="no bundled model"):
        bundled_model("weather")


def test_the_package_declares_its_types_and_license():
    import tomllib

    assert (REPO / "edgereid" / "py.typed").is_file() and "Apache License" in (REPO / "LICENSE").read_text()
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    data = project["tool"]["setuptools"]["package-data"]
    assert "py.typed" in data["edgereid"] and "*.onnx" in data["edgereid.bundled"]
    assert project["project"]["license"] == "Apache-2.0"


def test_demo_defaults_to_the_bundled_models():
    from edgereid.cli.main import build_parser

    args = build_parser().parse_args(["demo"])
    assert args.reid is None and args.keypoints is None and args.face is None
