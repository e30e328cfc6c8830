"""A small training loop shared by every method: AdamW, Adam or SGD, warm-up + cosine or multistep schedule,
optional mixed precision, batches prepared ahead on a loader thread, progress bar, loss-curve PNG, and a checkpoint
per the contract at the end (written atomically).

Methods supply a ``step(batch) -> dict of named loss terms``, an iterable of batches per epoch and optionally the
host-side ``prepare`` of a batch; the loop sums the terms, records each one, and keeps the history for the plot.
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import json
import math
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch
from torch import nn

from edgereid.card import ModelCard
from edgereid.errors import ConfigError
from edgereid.methods import distributed
from edgereid.methods.batches import ahead
from edgereid.methods.run_config import OptimConfig


def config_fingerprint(config: dict) -> str:
    """A short hash of a config (sorted JSON), stored in checkpoints and cards."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


def lr_factor(step: int, optim: OptimConfig, steps_per_epoch: int) -> float:
    """The learning-rate multiplier at ``step`` (0-based, counted in batches) for ``optim``'s schedule."""
    total, warmup = optim.epochs * steps_per_epoch, optim.warmup_epochs * steps_per_epoch
    ramp = optim.warmup_start + (1 - optim.warmup_start) * (step + 1) / warmup if step < warmup else 1.0
    if optim.schedule == "multistep":  # stepped per epoch, as WarmupMultiStepLR (the warm-up ramps under it)
        return ramp * optim.gamma ** bisect.bisect_right(optim.milestones, step // max(steps_per_epoch, 1))
    if step < warmup:
        return ramp
    progress = (step - warmup) / max(1, total - warmup)
    return optim.final_lr_fraction + (1 - optim.final_lr_fraction) * 0.5 * (1 + math.cos(math.pi * progress))


# per-term gradient norms are measured on this many steps of every epoch (each costs one backward per term)
GRADIENT_PROBES_PER_EPOCH = 4


def term_gradient_norms(terms: dict[str, torch.Tensor], params: list[nn.Parameter]) -> dict[str, float]:
    """The norm of each loss term's gradient with respect to ``params`` (the graph is kept for the real step)."""
    norms = {}
    for name, term in terms.items():
        grads = torch.autograd.grad(term, params, retain_graph=True, allow_unused=True)
        norms[name] = sum(float((g.float() ** 2).sum()) for g in grads if g is not None) ** 0.5
    return norms


def fit(model: nn.Module, params: Iterable[nn.Parameter], epochs: Callable[[int], Iterable],
        step: Callable[[object], dict[str, torch.Tensor]], optim: OptimConfig, steps_per_epoch: int,
        description: str = "train", clip_params: Iterable[nn.Parameter] | None = None,
        probe_params: Iterable[nn.Parameter] | None = None,
        prepare: Callable[[np.ndarray], object] | None = None) -> list[dict[str, float]]:
    """Train; returns one record per epoch with the mean of every loss term.

    ``epochs(e)`` gives epoch ``e``'s index batches (called on this thread, so it may use the model, e.g. to
    rebuild a memory); ``prepare`` turns this process's slice of one into the host tensors that ``step`` takes,
    ``optim.prefetch`` batches ahead on a loader thread (:func:`~edgereid.methods.batches.ahead`); without
    ``prepare`` ``step`` takes the slice itself.

    Gradients are clipped to ``optim.grad_clip`` (global norm) over ``clip_params`` when given
    (e.g. the backbone only, as CoReFace does), else over every trained parameter. Under ``torchrun``
    each process trains on its slice of every batch and gradients are averaged
    (:mod:`edgereid.methods.distributed`). A run with no step to take is an error, not an untrained model.

    With ``probe_params`` (e.g. the encoder's), each epoch's record also holds ``grad_norms`` and ``grad_shares``:
    every term's gradient norm on those parameters (mean over :data:`GRADIENT_PROBES_PER_EPOCH` steps) and its
    share of their sum, so a run shows which term actually trains the encoder."""
    from tqdm import tqdm

    if steps_per_epoch < 1 and optim.epochs > 0:
        raise ConfigError(f"{description}: an epoch has no training step", got=f"{steps_per_epoch} steps per epoch",
                          fix="lower batch_size below the number of training crops, or give more data")
    if optim.prefetch and prepare is None:  # its step draws random numbers on this thread, as the batches would
        raise ConfigError(f"{description}: optim.prefetch needs a method that prepares its batches apart from its "
                          "step (DCAC, AIO)", got=f"prefetch {optim.prefetch}", fix="set optim.prefetch: 0")
    torch.set_num_threads(optim.threads)
    params = [p for p in params if p.requires_grad]
    probe = [p for p in probe_params if p.requires_grad] if probe_params is not None else []
    clipped = params if clip_params is None else [p for p in clip_params if p.requires_grad]
    if optim.optimizer == "sgd":
        optimizer = torch.optim.SGD(params, lr=optim.lr, momentum=optim.momentum, weight_decay=optim.weight_decay)
    else:
        kind = torch.optim.AdamW if optim.optimizer == "adamw" else torch.optim.Adam
        optimizer = kind(params, lr=optim.lr, weight_decay=optim.weight_decay)
    total = optim.epochs * steps_per_epoch
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, optim, steps_per_epoch))
    on_cuda = bool(params) and params[0].device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda") if optim.mixed_precision and on_cuda else None

    def autocast():
        if not optim.mixed_precision:
            return contextlib.nullcontext()
        return torch.autocast("cuda" if on_cuda else "cpu", dtype=torch.float16 if on_cuda else torch.bfloat16)
    history: list[dict[str, float]] = []
    bar = tqdm(total=total, desc=description, unit="step", dynamic_ncols=True, disable=not distributed.is_main())
    for epoch in range(optim.epochs):
        model.train()
        sums: dict[str, float] = {}
        norm_sums: dict[str, float] = {}
        count = probes = 0
        slices = (distributed.shard(batch) for batch in epochs(epoch))
        for batch in ahead(map(prepare, slices), optim.prefetch) if prepare else slices:
            with autocast():
                terms = step(batch)
            if probe and count % max(1, steps_per_epoch // GRADIENT_PROBES_PER_EPOCH) == 0:
                for name, norm in term_gradient_norms(terms, probe).items():
                    norm_sums[name] = norm_sums.get(name, 0.0) + norm
                probes += 1
            loss = sum(terms.values())
            optimizer.zero_grad(set_to_none=True)
            (scaler.scale(loss) if scaler else loss).backward()
            distributed.average_gradients(params)
            if scaler:
                scaler.unscale_(optimizer)
            if optim.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(clipped, optim.grad_clip)
            if scaler:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            distributed.average_buffers(model)
            scheduler.step()
            for name, value in terms.items():
                sums[name] = sums.get(name, 0.0) + float(value.detach())
            count += 1
            bar.update(1)
            bar.set_postfix(epoch=epoch + 1, loss=f"{float(loss.detach()):.3f}")
        history.append({"epoch": epoch + 1, **{k: v / max(count, 1) for k, v in sums.items()}})
        if probes:
            norms = {k: v / probes for k, v in norm_sums.items()}
            history[-1].update(grad_norms=norms, grad_shares={k: v / max(sum(norms.values()), 1e-30)
                                                              for k, v in norms.items()})
    bar.close()
    model.eval()
    return history


def plot_history(history: list[dict[str, float]], path: str | Path, title: str) -> Path:
    """Loss curves, one line per term, as a PNG."""
    from edgereid.plots import line_plot

    names = dict.fromkeys(name for record in history for name, value in record.items()
                          if name != "epoch" and isinstance(value, (int, float)))
    # a term may start later (e.g. CoReFace's contrastive stage): plot it over the epochs it has
    series = {name: ([h["epoch"] for h in history if name in h], [h[name] for h in history if name in h])
              for name in names}
    return line_plot(series, path, title, "epoch", "loss")


def write_history(out_dir: Path, config: dict, history: list[dict[str, float]], title: str) -> None:
    """``history.json`` (config + per-epoch losses) and ``loss.png`` beside a run's checkpoint."""
    from edgereid.fileio import atomic_write_text

    atomic_write_text(out_dir / "history.json", json.dumps({"config": config, "history": history}, indent=1))
    plot_history(history, out_dir / "loss.png", title)


def save_run(model: nn.Module, card: ModelCard, out_dir: Path, config: dict,
             history: list[dict[str, float]], title: str) -> Path:
    """Checkpoint (with the config fingerprint in its header), history JSON and loss curve."""
    from edgereid.models.checkpoint import save_checkpoint

    out_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = save_checkpoint(model, out_dir / "model.safetensors", card=card, extra=run_metadata(config))
    write_history(out_dir, config, history, title)
    return checkpoint


def run_metadata(config: dict) -> dict[str, str]:
    """Checkpoint header entries that tie a checkpoint to the config that trained it."""
    return {"edgereid.config_fingerprint": config_fingerprint(config),
            "edgereid.config": json.dumps(config, default=str)}


def finish_run(model: nn.Module, card: ModelCard, out_dir: str | Path, config: dict,
               history: list[dict[str, float]], title: str, export: bool) -> Path:
    """:func:`save_run`, then (when ``export``) the ONNX export with its parity check; returns the checkpoint."""
    out_dir = Path(out_dir)
    if not distributed.is_main():  # under torchrun only the first process writes
        return out_dir / "model.safetensors"
    checkpoint = save_run(model, card, out_dir, config, history, title)
    if export:
        from edgereid.exporting.onnx_export import export_checkpoint

        report = export_checkpoint(checkpoint, out_dir / "model.onnx")
        print(f"exported {out_dir / 'model.onnx'}: {report.summary()}")
    return checkpoint
