"""DCAC (``method: dcac``): a domain-generalisable ReID teacher guided by a pre-trained latent diffusion
model. Ported from the official code (``RikoLi/DCAC``; ``methods.md`` §1).

Per batch: encoder feature ``z``, BNNeck ``z~``, logits ``l = W z~``. Losses: label-smoothed ID
cross-entropy; the prototypical memory contrastive loss ``CE(M u / T_m, y)`` with ``u = norm(z~)``, the
memory rebuilt from class means at every epoch start and hard-updated per batch (the least similar
sample of each class, momentum 0.2); and the diffusion denoising loss, where the UNet's single context
token is ``c = softmax(l / tau)^T E`` (learnable per-identity prompts ``E``), the UNet is frozen but
LoRA-adapted, the VAE frozen and its latents detached. The denoising loss reaches the encoder only
through ``l``: the classifier's "dark knowledge" is what the diffusion model corrects.
``ldm_weight: 0`` is the paper's own ablation (the baseline without diffusion).

Encoders: ``model: clip_vit_b16`` is the official CLIP ViT-B/16 (from a local CLIP folder,
:mod:`edgereid.models.clip_reid`), run with the official recipe in ``samples/configs/dcac_ms_to_ma_clip.yaml``
(Adam 5e-6, warm-up from 0.1x, multistep, no clipping, mixed precision); the world configs use a CNN from the
registry trained from scratch with AdamW at a CNN learning rate, which this CPU can train. The PCL memory is
built in the feature space the loss reads (:func:`memory_features`). Each epoch's record in ``history.json``
holds every term's share of the encoder's gradient; a diffusion share under 1 % warns. Departures that remain,
each a config key: the diffusion copy of a crop is fitted to the diffusion model's input size the way the model
was trained (Stable Diffusion: stretched, as the official code; ``diffusion_hw: [128, 128]`` in the paper
configs), or as ``diffusion_resize`` says; the ReID
augmentation is the official flip, pad 10 + random crop and random erasing 0.5 (``pad_crop``,
``random_erasing``), with ``photometric_jitter`` as an option.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Iterator

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from edgereid.data.scene_crops import CropSet
from edgereid.errors import ConfigError
from edgereid.methods import distributed
from edgereid.methods.batches import (flip_half, label_map, pad_and_crop, photometric_jitter, pk_batches,
                                      random_erasing)
from edgereid.methods.losses import label_smoothed_ce
from edgereid.methods.reid_data import ReidDataKeys, dataset_folders
from edgereid.methods.run_config import TrainRun
from edgereid.methods.trainer import finish_run, fit
from edgereid.models import create_model
from edgereid.models.pretrained import initialise_from
from edgereid.ops.preprocess import normalise_batch


@dataclass(frozen=True, kw_only=True)
class DCACConfig(TrainRun, ReidDataKeys):
    """``data`` / ``dataset`` / ``train_cameras`` as in :class:`~edgereid.methods.reid_data.ReidDataKeys`;
    ``diffusion_hw``: the size crops are given to the diffusion model (empty = the size it was trained at;
    128x128 for Stable Diffusion in the paper); ``init``: a local safetensors file the CNN encoder starts from
    (ImageNet MobileNetV2 from torchvision, or an earlier run; :mod:`edgereid.models.pretrained`)."""

    METHODS: ClassVar[tuple[str, ...]] = ("dcac",)

    ldm: str = "samples/models/ldm_world"
    init: str = ""  # pretrained encoder weights (safetensors); empty: from scratch
    diffusion_hw: tuple[int, ...] = ()
    diffusion_resize: str = ""  # stretch (official) or letterbox; empty: as the diffusion model was trained
    pad_crop: int = 10  # px, pad + random crop (official)
    random_erasing: float = 0.5  # probability (official); 0 switches it off
    photometric_jitter: bool = False  # brightness/contrast jitter (not in the official recipe)
    batch_size: int = 32
    tau: float = 0.6
    lora_rank: int = 8
    lora_alpha: float = 1.0
    prompt_init_std: float = 1.0
    memory_temperature: float = 0.01
    memory_momentum: float = 0.2
    id_weight: float = 1.0
    pcl_weight: float = 1.0
    ldm_weight: float = 1.0

    def validate(self, where: str) -> None:
        super().validate(where)
        dataset_folders(self.dataset)
        if self.diffusion_resize not in ("", "stretch", "letterbox") or not 0 <= self.random_erasing <= 1:
            raise ConfigError(f"{where}: diffusion_resize is stretch or letterbox and random_erasing a probability",
                              got=f"diffusion_resize={self.diffusion_resize!r}, random_erasing={self.random_erasing}")
        if self.init and not Path(self.init).is_file():  # before any data is read
            raise ConfigError(f"{where}: init names no file", got=self.init,
                              fix="give a local .safetensors file of encoder weights, or leave init empty")
        if self.tau <= 0 or self.lora_rank < 1:
            raise ConfigError(f"{where}: tau must be positive and lora_rank at least 1",
                              got=f"tau={self.tau}, lora_rank={self.lora_rank}")


class ClusterMemory(nn.Module):
    """Unit-norm class prototypes ``M [N, D]`` for the prototypical contrastive loss (no gradient)."""

    def __init__(self, num_classes: int, dim: int, temperature: float = 0.01, momentum: float = 0.2) -> None:
        super().__init__()
        self.register_buffer("prototypes", torch.zeros(num_classes, dim))
        self.temperature = temperature
        self.momentum = momentum

    @torch.no_grad()
    def rebuild(self, features: torch.Tensor, labels: torch.Tensor) -> None:
        """Every prototype = the normalised mean of its class's *normalised* BN features, as the official code
        (the cluster-contrast recipe) initialises it: each sample counts once, whatever its feature norm."""
        sums = torch.zeros_like(self.prototypes).index_add_(0, labels, F.normalize(features, dim=1))
        self.prototypes.copy_(F.normalize(sums, dim=1))

    def loss(self, unit: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """``CE(M u / T, y)``; uses a copy of ``M``, so the batch's memory update may follow before backward."""
        return F.cross_entropy(unit @ self.prototypes.clone().t() / self.temperature, labels)

    @torch.no_grad()
    def update_hard(self, unit: torch.Tensor, labels: torch.Tensor) -> None:
        """For each class in the batch, move its prototype toward its *least* similar sample."""
        for label in labels.unique():
            members = unit[labels == label]
            hardest = members[(members @ self.prototypes[label]).argmin()]
            mixed = self.momentum * self.prototypes[label] + (1 - self.momentum) * hardest
            self.prototypes[label] = F.normalize(mixed, dim=0)


class IdPrompts(nn.Module):
    """Learnable per-identity prompts ``E [N, D]``; the condition is ``softmax(logits / tau)^T E``."""

    def __init__(self, num_classes: int, dim: int, init_std: float = 1.0) -> None:
        super().__init__()
        self.prompts = nn.Parameter(torch.randn(num_classes, dim) * init_std)

    def forward(self, logits: torch.Tensor, tau: float) -> torch.Tensor:
        """One context token per sample ``[B, 1, D]``."""
        return (F.softmax(logits / tau, dim=1) @ self.prompts)[:, None, :]


def denoising_loss(ldm, pixels: torch.Tensor, context: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """``mean |eps - eps_theta(z_t, t, c)|^2`` with ``z_0`` a detached VAE sample and ``t ~ U{0..T-1}``."""
    with torch.no_grad():
        latents = ldm.vae.encode(pixels).latent_dist.sample(generator) * ldm.latent_scale
    noise = torch.randn(latents.shape, generator=generator).to(latents.device)  # CPU generator: reproducible
    steps = torch.randint(0, ldm.scheduler.config.num_train_timesteps, (len(latents),),
                          generator=generator).to(latents.device)
    predicted = ldm.unet(ldm.scheduler.add_noise(latents, noise, steps), steps, context).sample
    return F.mse_loss(predicted, noise)


def has_batch_norm(model: nn.Module) -> bool:
    """Whether ``model`` normalises with batch statistics in training (BatchNorm) rather than per sample."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


@torch.no_grad()
def memory_features(model: nn.Module, crops: CropSet, spec, batch_size: int, rng: np.random.Generator) -> torch.Tensor:
    """BN-neck features of every crop, in the feature space the PCL loss compares the memory with.

    The loss reads train-mode features. The official encoder (CLIP ViT, LayerNorm) gives the same features in
    eval mode, so the official code builds the memory in eval mode; a BatchNorm CNN trained from scratch does not
    (its running statistics lag its batch statistics: cosine 0.045 between the two after one world epoch), and a
    memory built in eval mode then lives in another space and PCL dominates the loss. So BatchNorm encoders are
    run in train mode here, on shuffled batches of the training size, without gradient, and their running
    statistics are put back afterwards; encoders without BatchNorm run in eval mode as the official code does."""
    batch_norm = has_batch_norm(model)
    saved = {name: value.clone() for name, value in model.named_buffers()} if batch_norm else {}
    device = next(model.parameters()).device
    order = rng.permutation(len(crops)) if batch_norm else np.arange(len(crops))
    out = torch.empty(len(crops), model.embedding_dim, device=device)
    model.train(batch_norm)
    try:
        # equal chunks of about batch_size (a 1-crop remainder would have no batch statistics)
        for chunk in np.array_split(order, max(1, len(order) // batch_size)):
            pixels = torch.from_numpy(normalise_batch(crops.images[np.sort(chunk)], spec)).to(device)
            out[torch.from_numpy(np.sort(chunk)).to(device)] = model.bnneck(model.features(pixels)).float()
    finally:
        for name, value in model.named_buffers():
            if name in saved:
                value.copy_(saved[name])
        model.train()
    return out


# below this share of the encoder's gradient the diffusion term changes nothing measurable (issue 19: it was 0.3 %)
DIFFUSION_SHARE_FLOOR = 0.01


def warn_if_diffusion_is_silent(history: list[dict]) -> float | None:
    """The diffusion term's mean share of the encoder gradient over the run (None without one), with a
    ``RuntimeWarning`` when it is under :data:`DIFFUSION_SHARE_FLOOR`: DCAC then trains as its own ablation."""
    import warnings

    shares = [record["grad_shares"]["ldm"] for record in history if "ldm" in record.get("grad_shares", {})]
    if not shares:
        return None
    share = float(np.mean(shares))
    if share < DIFFUSION_SHARE_FLOOR:
        warnings.warn(f"the diffusion loss is {100 * share:.2f} % of the encoder's gradient (per-term norms in "
                      f"history.json): under {100 * DIFFUSION_SHARE_FLOOR:.0f} % DCAC trains as its ablation; raise "
                      "ldm_weight or check that the diffusion model listens to its condition", RuntimeWarning)
    return share


def train(config: DCACConfig, config_dict: dict[str, Any]) -> Path:
    """Train the DCAC teacher (or its ablation), save the run, export the encoder; returns the checkpoint."""
    from edgereid.diffusion.ldm import diffusion_spec, load_ldm
    from edgereid.methods.lora import add_lora

    torch.manual_seed(config.optim.seed)
    spec = create_model(config.model, **config.model_args).card(config.model).input
    use_ldm = config.ldm_weight > 0
    ldm = load_ldm(config.ldm).freeze() if use_ldm else None
    specs = (spec,)
    if use_ldm:
        specs += (diffusion_spec(tuple(config.diffusion_hw) or ldm.image_hw, config.diffusion_resize or ldm.resize),)
    crops = [config.training_crops(s) for s in specs]
    if len(crops) == 2 and not (np.array_equal(crops[0].pids, crops[1].pids)
                                and np.array_equal(crops[0].cams, crops[1].cams)):
        raise RuntimeError("the ReID and diffusion crops are not the same people in the same order")
    labels, num_classes = label_map(crops[0].pids)
    model = create_model(config.model, **{**config.model_args, "num_classes": num_classes})
    if config.init:
        print(f"initialised {config.model} from {config.init}: {initialise_from(model, config.init).summary()}")
    nn.init.normal_(model.classifier.weight, std=0.001)  # as the official code: near-uniform p at the start
    memory = ClusterMemory(num_classes, model.embedding_dim, config.memory_temperature, config.memory_momentum)
    parts = nn.ModuleDict({"model": model})
    if use_ldm:
        parts["prompts"] = IdPrompts(num_classes, ldm.context_dim, config.prompt_init_std)
        add_lora(ldm.unet, config.lora_rank, config.lora_alpha)
        parts["unet"] = ldm.unet
    device = distributed.device()
    parts.to(device)
    memory.to(device)
    if use_ldm:
        ldm.vae.to(device)
    rng = np.random.default_rng(config.optim.seed)
    sample_rng, generator = distributed.sample_randomness(rng, config.optim.seed)
    targets_all = torch.from_numpy(labels).to(device)
    steps = len(crops[0]) // config.batch_size

    def epoch_batches(_: int) -> Iterator[np.ndarray]:
        memory.rebuild(memory_features(model, crops[0], spec, config.batch_size, rng), targets_all)
        return pk_batches(crops[0], config.ids_per_batch, config.batch_size // config.ids_per_batch, steps, rng)

    def prepare(index: np.ndarray) -> dict[str, torch.Tensor]:
        """The host side of a step (on the loader thread when prefetching): augmented crops, their diffusion
        inputs and indices."""
        images = crops[0].images[index]
        flip_half(images, sample_rng)
        images = pad_and_crop(images, config.pad_crop, sample_rng)
        if config.photometric_jitter:
            images = photometric_jitter(images, sample_rng)
        augmented = normalise_batch(images, spec)
        random_erasing(augmented, config.random_erasing, sample_rng)
        batch = {"crops": distributed.host_tensor(augmented), "index": distributed.host_tensor(index)}
        if use_ldm:
            batch["pixels"] = distributed.host_tensor(normalise_batch(crops[1].images[index], specs[1],
                                                                      placement=crops[1].placement[index]))
        return batch

    def step(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        on_device = {name: value.to(device, non_blocking=True) for name, value in batch.items()}
        bn = model.bnneck(model.features(on_device["crops"]))
        logits = model.classifier(bn)
        target = targets_all[on_device["index"]]
        unit = F.normalize(bn, dim=1)
        terms = {"id": config.id_weight * label_smoothed_ce(logits, target),
                 "pcl": config.pcl_weight * memory.loss(unit, target)}
        # every process applies the same update, from the whole (gathered) batch
        memory.update_hard(distributed.all_gather(unit.detach()), distributed.all_gather(target))
        if use_ldm:
            context = parts["prompts"](logits, config.tau)
            terms["ldm"] = config.ldm_weight * denoising_loss(ldm, on_device["pixels"], context, generator)
        return terms

    encoder = [p for name, p in model.named_parameters() if not name.startswith(("bnneck", "classifier"))]
    history = fit(parts, parts.parameters(), epoch_batches, step, config.optim, steps,
                  f"dcac {config.model}" + ("" if use_ldm else " (no diffusion)"), probe_params=encoder,
                  prepare=prepare)
    warn_if_diffusion_is_silent(history)
    model.cpu()
    title = f"DCAC teacher {config.model}" + ("" if use_ldm else " without the diffusion loss")
    return finish_run(model, model.card(config.model), config.out, config_dict, history, title, config.export)
