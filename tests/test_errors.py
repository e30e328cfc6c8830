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


def test_without_tqdm_long_work_runs_without_a_bar(monkeypatch):
    import edgereid.progress as progress

    monkeypatch.setattr(progress, "available", lambda: False)
    items = [1, 2, 3]
    assert progress.progress(items, desc="x") is items
    assert progress.progress(total=3) is None
