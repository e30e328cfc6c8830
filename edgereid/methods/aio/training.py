"""AIO (``method: aio``): a multimodal ReID teacher on a frozen pre-trained encoder. Paper
re-implementation (the official code was not available; ``methods.md`` §2, :mod:`edgereid.methods.aio`).

Every batch holds P identities x K RGB crops from the training cameras. Each crop is also given as IR
and as a sketch, and each identity's caption as text: in the first ``stage1_epochs`` the IR and sketch
are synthesised (channel augmentation, line art), afterwards the world renders them, the paper's progression
from synthetic to real multimodal data: the IR view is the world's IR camera recording the same moment (IR
intensity of the scene before any camera effect, then that camera's gain, resolution, blur, noise and JPEG, as
its real crops are made), the sketch is drawn from the RGB crop. Per batch the
model encodes RGB, IR, sketch and text alone and RGB with a masked caption, and trains on:

- CE: label-smoothed identity loss on the BNNeck logits of all five (each through its modality's BNNeck,
  one classifier for all);
- VA: the masked attribute words predicted at the masked caption positions of the RGB + caption pass;
- FB: IR, sketch and text embeddings bound to the batch's RGB embeddings of the same identity (an IR or
  sketch image is not scored against the RGB crop it was made from, only the identity's other crops).

Only the tokenizers, ``[CLS]``, modality embeddings and heads train; the encoder stays frozen.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Iterator

import numpy as np
import torch

from edgereid.methods.aio.captions import CaptionTokenizer
from edgereid.methods.aio.encoder import EncoderSpec, load_encoder
from edgereid.methods.aio.losses import feature_binding_loss, masked_attribute_loss
from edgereid.methods.aio.modalities import modality_images
from edgereid.methods.aio.model import PATCH, AIOModel
from edgereid.data.synthetic import WorldSpec
from edgereid.data.synthetic import World
from edgereid.errors import ConfigError
from edgereid.methods import distributed
from edgereid.methods.batches import flip_half, label_map, photometric_jitter, pk_batches
from edgereid.methods.losses import label_smoothed_ce
from edgereid.methods.reid_data import reid_training_crops
from edgereid.methods.run_config import RunConfig
from edgereid.methods.trainer import fit, run_metadata, write_history
from edgereid.ops.preprocess import normalise_batch

BOUND_MODALITIES = ("ir", "sketch", "text")


@dataclass(frozen=True, kw_only=True)
class AIOConfig(RunConfig):
    """``train_cameras``: RGB cameras whose crops train (0-based; empty = every RGB camera); ``stage1_epochs``: epochs
    on synthesised IR/sketch before the world's own renderings; ``mask_probability``: chance that each
    attribute word of a caption is masked for VA."""

    METHODS: ClassVar[tuple[str, ...]] = ("aio",)

    encoder: EncoderSpec = field(default_factory=EncoderSpec)
    input_hw: tuple[int, ...] = (128, 64)
    tokenizer_channels: int = 32
    data: WorldSpec = field(default_factory=WorldSpec)
    train_cameras: tuple[int, ...] = ()
    stage1_epochs: int = 4
    batch_size: int = 16
    ids_per_batch: int = 8
    mask_probability: float = 1.0
    fb_temperature: float = 0.1
    id_weight: float = 1.0
    va_weight: float = 1.0
    fb_weight: float = 1.0

    def validate(self, where: str) -> None:
        super().validate(where)
        if not 0 <= self.stage1_epochs <= self.optim.epochs or not 0 < self.mask_probability <= 1:
            raise ConfigError(f"{where}: stage1_epochs must be within the epochs and mask_probability in (0, 1]",
                              got=f"stage1_epochs={self.stage1_epochs}, epochs={self.optim.epochs}, "
                              f"mask_probability={self.mask_probability}")
        if len(self.input_hw) != 2 or any(side % PATCH for side in self.input_hw):
            raise ConfigError(f"{where}: input_hw must be [height, width], both multiples of {PATCH}",
                              got=str(list(self.input_hw)))
        if self.batch_size % self.ids_per_batch:
            raise ConfigError(f"{where}: batch_size must be a multiple of ids_per_batch",
                              got=f"{self.batch_size} and {self.ids_per_batch}")


def rgb_cameras(world: World, chosen: tuple[int, ...]) -> tuple[int, ...]:
    """The training cameras: ``chosen``, or every RGB camera of the world; an IR camera is refused (its
    crops would enter as RGB anchors)."""
    ir = [c.cam_id for c in world.cameras if c.modality == "ir"]
    if set(chosen) & set(ir):
        raise ConfigError("train_cameras holds an IR camera: AIO's anchors are RGB crops",
                          expected=f"cameras other than {ir}", got=str(list(chosen)),
                          fix="leave train_cameras empty for every RGB camera, or list RGB cameras only")
    return tuple(chosen) or tuple(c.cam_id for c in world.cameras if c.modality == "rgb")


def train(config: AIOConfig, config_dict: dict[str, Any]) -> Path:
    """Train the AIO teacher, save it with its history, export its branches; returns the checkpoint."""
    from edgereid.methods.aio.checkpoint import image_spec, save_aio

    torch.manual_seed(config.optim.seed)
    encoder = load_encoder(config.encoder, tuple(config.input_hw))
    spec = image_spec(tuple(config.input_hw))
    world = config.data.world()
    crops = reid_training_crops(config.data, "", spec, rgb_cameras(world, config.train_cameras), ir_view=True)
    labels, num_classes = label_map(crops.pids)
    captions = {int(pid): world.identity(int(pid)).text for pid in np.unique(crops.pids)}
    model = AIOModel(encoder, num_classes, tuple(config.input_hw), config.tokenizer_channels)
    device = distributed.device()
    model.to(device)
    text = CaptionTokenizer(encoder.tokenizer, encoder.special)
    rng = np.random.default_rng(config.optim.seed)
    sample_rng, _ = distributed.sample_randomness(rng, config.optim.seed)
    steps = len(crops) // config.batch_size
    stage = {"source": "synthetic"}

    def epoch_batches(epoch: int) -> Iterator[np.ndarray]:
        stage["source"] = "synthetic" if epoch < config.stage1_epochs else "world"
        return pk_batches(crops, config.ids_per_batch, config.batch_size // config.ids_per_batch, steps, rng)

    def tensor(images: np.ndarray) -> torch.Tensor:
        return distributed.host_tensor(normalise_batch(images, spec))

    def prepare(index: np.ndarray) -> dict[str, Any]:
        """The host side of a step (on the loader thread when prefetching): the RGB crop, its IR and sketch
        views, the captions plain and masked, and the indices."""
        images = crops.images[index]
        flip_half(images, sample_rng)
        batch: dict[str, Any] = {"index": index, "rgb": tensor(photometric_jitter(images, sample_rng))}
        batch.update({m: tensor(modality_images(images, m, stage["source"], sample_rng)) for m in ("ir", "sketch")
                      if not (m == "ir" and stage["source"] == "world")})
        if stage["source"] == "world":  # stage 2: the IR camera's own view of the same moment
            infrared = crops.ir_images[index]
            flip_half(infrared, sample_rng)
            batch["ir"] = tensor(infrared)
        sentences = [captions[int(pid)] for pid in crops.pids[index]]
        batch["plain"] = text.encode(sentences)
        batch["masked"] = text.encode(sentences, config.mask_probability, sample_rng)
        return batch

    def step(batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        index, plain, masked = batch["index"], batch["plain"], batch["masked"]
        rgb, ir, sketch = (batch[m].to(device, non_blocking=True) for m in ("rgb", "ir", "sketch"))
        inputs = {"rgb": ({"rgb": rgb}, None), "ir": ({"ir": ir}, None),
                  "sketch": ({"sketch": sketch}, None), "text": (None, plain), "rgb+text": ({"rgb": rgb}, masked)}
        bn, text_hidden = {}, None
        for name, (images_in, text_in) in inputs.items():
            feature, hidden = model.encode(images_in, text_in)
            bn[name] = model.bnneck(feature, images_in, text_in)
            text_hidden = hidden if name == "rgb+text" else text_hidden
        target = torch.from_numpy(labels[index]).to(device)
        unit = {name: torch.nn.functional.normalize(value, dim=1) for name, value in bn.items()}
        crops_used = torch.from_numpy(index)
        binding = sum(feature_binding_loss(unit[m], unit["rgb"], target, config.fb_temperature,
                                           sources=None if m == "text" else crops_used)
                      for m in BOUND_MODALITIES) / len(BOUND_MODALITIES)
        logits = model.classifier(torch.cat(list(bn.values())))
        return {"id": config.id_weight * label_smoothed_ce(logits, target.repeat(len(bn))),
                "va": config.va_weight * masked_attribute_loss(model.attribute_head(text_hidden), masked.targets),
                "fb": config.fb_weight * binding}

    history = fit(model, model.trainable_parameters(), epoch_batches, step, config.optim, steps,
                  f"aio ({config.encoder.kind} encoder)", prepare=prepare)
    model.cpu()
    out = Path(config.out)
    checkpoint = out / "model.safetensors"
    if not distributed.is_main():  # under torchrun only the first process writes
        return checkpoint
    out.mkdir(parents=True, exist_ok=True)
    save_aio(model, checkpoint, run_metadata(config_dict))
    write_history(out, config_dict, history, f"AIO teacher ({config.encoder.kind} encoder, "
                  f"stage 2 from epoch {config.stage1_epochs + 1})")
    if config.export:
        from edgereid.methods.aio.export import export_branches
        from edgereid.fileio import atomic_write_text

        reports = export_branches(model, checkpoint, out)
        atomic_write_text(out / "export.json", json.dumps(reports, indent=1))
        for name, summary in reports.items():
            print(f"exported {out / (name + '.onnx')}: {summary}")
    return checkpoint
