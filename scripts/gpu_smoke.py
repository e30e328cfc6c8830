#!/usr/bin/env python3
"""A few training steps of each method on tiny models on a GPU, to check the CUDA path end to end: parameters on
the device, mixed precision (FP16 autocast with a gradient scaler), DCAC's and AIO's batches prepared ahead into
pinned memory on the loader thread, and the loss falling.

    python scripts/gpu_smoke.py --method dcac --method aio --method coreface --method stable_keypoints --json F.json
    torchrun --nproc_per_node 1 scripts/gpu_smoke.py --method dcac     # the same through DDP over NCCL

Without CUDA it says so and exits 0 (nothing to check here). Every method trains on a small synthetic world with
a tiny model of its real class (DCAC: the tiny CNN with a tiny random latent diffusion model; AIO: the tiny
transformer encoder; CoReFace: the tiny face teacher on rendered faces; CCFace: a tiny LR student distilled
from such a teacher (trained first, on the GPU too); StableKeypoints: token learning with BF16
autocast over the tiny diffusion model on synthetic person crops); a method passes when its main loss
(:data:`MAIN_TERM`) of the last epoch (for StableKeypoints: the mean of the last 20 steps) is below the first's.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

MAIN_TERM = {"dcac": "id", "aio": "id", "coreface": "arcface", "ccface": "proxy", "stable_keypoints": "localisation"}
WINDOW = {"stable_keypoints": 20}  # steps averaged at each end (1 epoch for the others)
WORLD = ["--set", "data={seed: 3, identities: 8, cameras: 4, frames_per_camera: 10, pace: 4.0, people_per_frame: 4}",
         "--set", "train_cameras=[0, 1]", "--set", "batch_size=8", "--set", "ids_per_batch=4",
         "--set", "optim.mixed_precision=true", "--set", "optim.prefetch=2", "--set", "export=false"]


def _tiny_ldm(folder: Path) -> Path:
    import torch

    from edgereid.diffusion.ldm import save_ldm
    from edgereid.methods.ldm_pretrain import PretrainConfig, UnetConfig, VaeConfig, build_ldm

    torch.manual_seed(0)
    config = PretrainConfig(out=str(folder), image_hw=(32, 32), vae=VaeConfig(channels=(8, 16)),
                            unet=UnetConfig(channels=(16, 32), context_dim=16))
    return save_ldm(build_ldm(config, ["a person in a red jacket", "a person with a backpack"]), folder / "ldm")


def _arguments(method: str, out: Path, epochs: int | None = None) -> list[str]:
    """The ``edgereid`` command line of ``method``'s smoke run (``epochs`` overrides its length: epochs, or
    steps for StableKeypoints' token learning)."""
    key = "steps" if method == "stable_keypoints" else "optim.epochs"  # token learning counts steps
    shorter = ["--set", f"{key}={epochs}"] if epochs else []
    return _method_arguments(method, out) + shorter


def _method_arguments(method: str, out: Path) -> list[str]:
    if method == "stable_keypoints":
        from edgereid.cli import main as cli

        cli(["synth", "--layout", "person-crops", "--out", str(out / "crops"), "--seed", "3", "--identities", "8",
             "--cameras", "2", "--frames", "6"])
        return ["keypoints", "learn", "--config", "samples/configs/stable_keypoints_world.yaml",
                "--set", f"ldm={_tiny_ldm(out)}", "--set", f"crops={out / 'crops' / 'images'}",
                "--set", f"out={out / 'run'}", "--set", "num_tokens=16", "--set", "candidates=6", "--set", "top_k=4",
                "--set", "steps=120", "--set", "num_indices=8", "--set", "map_hw=[16, 16]",
                "--set", "layers=[up_blocks.1.attentions.0, up_blocks.1.attentions.1]",
                "--set", "mixed_precision=true"]
    faces = ["--set", "data={seed: 3, identities: 8, per_identity: 6}", "--set", "batch_size=16",
             "--set", "optim.mixed_precision=true", "--set", "export=false"]
    if method == "coreface":
        return ["train", "--config", "samples/configs/coreface_teacher.yaml", "--set", "model=test_face_teacher",
                "--set", "optim.epochs=4", "--set", "dropout={stage2_epoch: 2, stage1: 0.4, stage2: 0.6}",
                "--set", f"out={out / 'run'}", *faces]
    if method == "ccface":
        from edgereid.cli import main as cli

        cli(_method_arguments("coreface", out / "teacher"))
        return ["distill", "--config", "samples/configs/ccface_student.yaml", "--set", "student=test_face",
                "--set", f"teacher={out / 'teacher' / 'run' / 'model.safetensors'}", "--set", "optim.epochs=4",
                "--set", f"out={out / 'run'}", *faces]
    if method == "dcac":
        return ["train", "--config", "samples/configs/dcac_world.yaml", "--set", "model=test_reid",
                "--set", f"ldm={_tiny_ldm(out)}", "--set", "lora_rank=2", "--set", "optim.epochs=4",
                "--set", f"out={out / 'run'}", *WORLD]
    return ["train", "--config", "samples/configs/aio_world.yaml", "--set",
            "encoder={kind: tiny, width: 32, layers: 2, heads: 2}", "--set", "input_hw=[32, 16]",
            "--set", "tokenizer_channels=8", "--set", "stage1_epochs=2", "--set", "optim.epochs=6",
            "--set", f"out={out / 'run'}", *WORLD]


def history_records(path: Path) -> list[dict]:
    """The per-epoch (training methods) or per-step (token learning) records of a run's history.json."""
    data = json.loads(path.read_text())
    return data["history"] if isinstance(data, dict) else data


def first_and_last(history: list[dict], method: str) -> tuple[float | None, float | None]:
    """The main loss averaged over the first and the last :data:`WINDOW` records."""
    window = WINDOW.get(method, 1)
    if len(history) < 2 * window:
        return None, None
    values = [record[MAIN_TERM[method]] for record in history]
    return sum(values[:window]) / window, sum(values[-window:]) / window


def smoke(method: str) -> dict:
    """Train ``method`` briefly on the GPU; its record for the JSON."""
    import torch

    from edgereid.cli import main as cli

    with tempfile.TemporaryDirectory(prefix=f"gpu-smoke-{method}-") as tmp:
        out = Path(tmp)
        torch.cuda.reset_peak_memory_stats()
        started = time.perf_counter()
        code = cli(_arguments(method, out))
        seconds = time.perf_counter() - started
        history = history_records(out / "run" / "history.json") if code == 0 else []
    first, last = first_and_last(history, method)
    term = MAIN_TERM[method]
    return {"method": method, "exit_code": code, "seconds": round(seconds, 1), "term": term, "first": first,
            "last": last,
            "peak_memory_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1),
            "passed": code == 0 and first is not None and last < first}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--method", action="append", choices=sorted(MAIN_TERM), help="repeatable; default all")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        print("gpu_smoke: no CUDA device here; nothing to check (run it on a GPU machine)")
        return 0
    results = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__, "cuda": torch.version.cuda,
               "runs": [smoke(method) for method in args.method or sorted(MAIN_TERM)]}
    print(json.dumps(results, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0 if all(run["passed"] for run in results["runs"]) else 1


if __name__ == "__main__":
    sys.exit(main())
