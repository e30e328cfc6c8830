"""Data-parallel training: two gloo processes on a CPU end with the parameters one process gets from
the whole batch, and ``edgereid train`` runs under torchrun."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")


def _train(rank: int, world: int, port: int, out: str) -> None:
    if world > 1:
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world))
        torch.distributed.init_process_group("gloo", rank=rank, world_size=world)
    from edgereid.methods import distributed
    from edgereid.methods.trainer import OptimConfig, fit

    torch.manual_seed(0)
    model = torch.nn.Linear(5, 3)
    data = torch.randn(16, 5, generator=torch.Generator().manual_seed(1))
    target = torch.randn(16, 3, generator=torch.Generator().manual_seed(2))
    batches = lambda _: iter([np.arange(8), np.arange(8, 16)])
    step = lambda index: {"mse": ((model(data[index]) - target[index]) ** 2).mean()}
    fit(model, model.parameters(), batches, step, OptimConfig(epochs=2, warmup_epochs=0, weight_decay=0.0), 2)
    if rank == 0:
        torch.save({k: v.clone() for k, v in model.state_dict().items()}, out)
    distributed.finish()  # barrier, then leave: tearing gloo down while the other rank works can abort it


def test_two_processes_match_one_process_on_the_whole_batch(tmp_path):
    import torch.multiprocessing as mp

    _train(0, 1, 0, str(tmp_path / "single.pt"))
    mp.spawn(_train, args=(2, 29517, str(tmp_path / "ddp.pt")), nprocs=2, join=True)
    single = torch.load(tmp_path / "single.pt", weights_only=True)
    both = torch.load(tmp_path / "ddp.pt", weights_only=True)
    for name in single:
        assert torch.allclose(single[name], both[name], atol=1e-6), name


def _buffers(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world))
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world)
    from edgereid.methods import distributed

    norm = torch.nn.BatchNorm1d(2)
    norm.running_mean.fill_(float(rank))  # each process saw different data
    distributed.average_buffers(norm)
    torch.save(norm.running_mean.clone(), f"{out}.{rank}")
    distributed.finish()


def test_batchnorm_statistics_are_averaged_over_processes(tmp_path):
    import torch.multiprocessing as mp

    mp.spawn(_buffers, args=(2, 29518, str(tmp_path / "mean")), nprocs=2, join=True)
    for rank in (0, 1):
        assert torch.equal(torch.load(tmp_path / f"mean.{rank}", weights_only=True), torch.full((2,), 0.5))


@pytest.mark.skipif(sys.platform != "linux", reason="torchrun gloo test written for Linux")
def test_edgereid_train_runs_under_torchrun(tmp_path):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "edgereid",
               "train", "--config", "samples/configs/dcac_world.yaml", "--set", "model=test_reid",
               "--set", "ldm_weight=0", "--set", f"out={out}", "--set", "optim.epochs=1",
               "--set", "data.identities=8", "--set", "data.cameras=2", "--set", "data.frames_per_camera=8",
               "--set", "train_cameras=[0, 1]", "--set", "batch_size=8", "--set", "ids_per_batch=4",
               "--set", "export=false"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""})
    assert done.returncode == 0, done.stderr[-2000:]
    assert (out / "model.safetensors").is_file()
    assert done.stdout.count("checkpoint:") == 1  # only the first process reports


@pytest.mark.skipif(sys.platform != "linux", reason="torchrun gloo test written for Linux")
def test_aio_and_its_distillation_run_under_torchrun(tmp_path):
    pytest.importorskip("transformers")
    world = ["--set", "data={seed: 3, identities: 8, cameras: 4, frames_per_camera: 8, pace: 4.0, people_per_frame: 4}",
             "--set", "train_cameras=[0, 1]", "--set", "batch_size=8", "--set", "ids_per_batch=4",
             "--set", "optim.epochs=1", "--set", "export=false"]
    runs = [["train", "--config", "samples/configs/aio_world.yaml", "--set", f"out={tmp_path / 'teacher'}",
             "--set", "encoder={kind: tiny}", "--set", "input_hw=[32, 16]", "--set", "tokenizer_channels=8",
             "--set", "stage1_epochs=0", *world],
            ["distill", "--config", "samples/configs/aio_student.yaml", "--set", "student=test_reid",
             "--set", "student_args={}", "--set", f"teacher={tmp_path / 'teacher' / 'model.safetensors'}",
             "--set", "modality=ir", "--set", f"out={tmp_path / 'student'}", *world]]
    for run in runs:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m",
                   "edgereid", *run]
        done = subprocess.run(command, capture_output=True, text=True, timeout=300,
                              env={**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""})
        assert done.returncode == 0, done.stderr[-2000:]
        assert done.stdout.count("checkpoint:") == 1
    assert (tmp_path / "student" / "model.safetensors").is_file()
