"""Missing optional dependencies are typed errors that name the extra to install, never a TypeError or a
raw ModuleNotFoundError; a missing tqdm only removes the progress bar."""

import sys

import pytest

from edgereid.errors import EdgeReidError, MissingDependencyError


def _block(monkeypatch, *modules: str) -> None:
    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)  # `import name` now raises ImportError


@pytest.mark.parametrize("call, blocked, extra", [
    (lambda: __import__("edgereid.diffusion.ldm", fromlist=["x"]).import_diffusers(), ("diffusers",), "teachers"),
    (lambda: __import__("edgereid.engine_file", fromlist=["x"]).import_tensorrt(), ("tensorrt", "tensorrt_rtx"), "trt"),
    (lambda: __import__("edgereid.runtime.cuda", fromlist=["x"]).bindings("runtime"),
     ("cuda", "cuda.bindings", "cuda.bindings.runtime"), "gpu"),
])
def test_a_missing_extra_names_what_to_install(monkeypatch, call, blocked, extra):
    _block(monkeypatch, *blocked)
    with pytest.raises(MissingDependencyError) as info:
        call()
    assert isinstance(info.value, EdgeReidError) and isinstance(info.value, ImportError)
    assert f"pip install 'edgereid[{extra}]'" in str(info.value) and info.value.extra == extra


def test_off_a_terminal_each_phase_prints_two_lines(capsys):
    """Under pytest stderr is captured, not a terminal: no bar redraws, one line to start, one to finish."""
    from edgereid.progress import progress

    assert list(progress(range(500), desc="rendering")) == list(range(500))
    bar = progress(total=3, desc="TensorRT build")
    for step in range(3):
        bar.n = step + 1
        bar.refresh()
    bar.close()
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[0] == "rendering ..." and lines[1].startswith("rendering: done, 500 in ")
    assert lines[2] == "TensorRT build (3 steps) ..." and lines[3].startswith("TensorRT build: done, 3 in")
    assert len(lines) == 4
