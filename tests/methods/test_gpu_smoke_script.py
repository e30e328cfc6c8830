"""scripts/gpu_smoke.py: it skips cleanly without a GPU, and its tiny runs (mixed precision on) train on this CPU."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "gpu_smoke.py"


def _module():
    spec = importlib.util.spec_from_file_location("gpu_smoke", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU machine the script runs for real")
def test_without_a_gpu_the_script_says_so_and_exits_zero():
    done = subprocess.run([sys.executable, str(SCRIPT), "--method", "dcac"], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0 and "no CUDA device" in done.stdout


@pytest.mark.parametrize("method", ["dcac", "aio", "coreface", "ccface", "stable_keypoints"])
def test_the_smoke_runs_train_on_the_cpu_with_bf16_autocast(method, tmp_path):
    from edgereid.cli import main

    module = _module()
    epochs = {"dcac": 2, "aio": 3, "coreface": 4, "ccface": 4, "stable_keypoints": 40}[method]
    # BF16 autocast runs the tiny UNet 6x slower on this CPU; test_device_handling_on_the_cpu covers that path
    faster = ["--set", "mixed_precision=false"] if method == "stable_keypoints" else []
    assert main(module._arguments(method, tmp_path, epochs=epochs) + faster) == 0
    first, last = module.first_and_last(module.history_records(tmp_path / "run" / "history.json"), method)
    assert last < first
