"""Checkpoints per the design's contract: safetensors whose header rebuilds the model.

The metadata names the registered model, its constructor arguments and its card, so a single file
is enough to rebuild, evaluate or export. Nothing is ever unpickled.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from edgereid.card import ModelCard
from edgereid.errors import CheckpointError
from edgereid.fileio import atomic_write_bytes
from edgereid.registry import create_model
from edgereid.version import __version__

META_MODEL = "edgereid.model"
META_ARGS = "edgereid.args"
META_CARD = "edgereid.card"
META_VERSION = "edgereid.version"
# A checkpoint's header is a few kilobytes of JSON (names, shapes, the card); more is not one of ours.
MAX_HEADER_BYTES = 16 << 20


def model_card(model: nn.Module) -> ModelCard:
    """The card of a model built by :func:`edgereid.models.create_model`."""
    name = getattr(model, "registry_name", None)
    if name is None:
        raise CheckpointError("model was not built through the registry",
                              fix="build it with edgereid.models.create_model(name, ...)")
    return model.card(name)


def save_checkpoint(model: nn.Module, path: str | Path, *, card: ModelCard | None = None,
                    extra: dict[str, str] | None = None) -> Path:
    """Write the model's weights and rebuild header atomically to ``path`` (a .safetensors file)."""
    from safetensors.torch import save

    metadata = {
        META_MODEL: model.registry_name if hasattr(model, "registry_name") else "",
        META_ARGS: json.dumps(getattr(model, "constructor_args", {})),
        META_CARD: (card or model_card(model)).to_json(),
        META_VERSION: __version__,
        **(extra or {}),
    }
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    return atomic_write_bytes(path, save(tensors, metadata=metadata))


def safetensors_metadata(path: str | Path, fix: str = "pass a .safetensors file written by edgereid") -> dict[str, str]:
    """The metadata of any safetensors file, after checking that its declared header is bounded and inside it."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}", fix="check the path")
    with open(path, "rb") as handle:  # safetensors: an 8-byte little-endian header length, then the header
        header_bytes = int.from_bytes(handle.read(8), "little")
    if header_bytes > min(MAX_HEADER_BYTES, path.stat().st_size - 8):
        raise CheckpointError(f"{path} is not a readable safetensors checkpoint: it declares a header larger "
                              "than a checkpoint's",
                              expected=f"at most {MAX_HEADER_BYTES} bytes and within the file",
                              got=f"{header_bytes} bytes", fix=fix)
    try:
        with safe_open(str(path), framework="pt") as handle:
            return handle.metadata() or {}
    except Exception as exc:  # safetensors raises its own error types
        raise CheckpointError(f"{path} is not a readable safetensors checkpoint", got=str(exc)[:200],
                              fix=fix) from exc


def read_checkpoint_header(path: str | Path) -> dict[str, str]:
    """The metadata header of a checkpoint, checked for the keys that rebuild a model."""
    metadata = safetensors_metadata(path)
    missing = [k for k in (META_MODEL, META_ARGS) if not metadata.get(k)]
    if missing:
        raise CheckpointError(f"{path} has no edgereid header", expected=f"metadata keys {missing}",
                              got=f"keys {sorted(metadata)}",
                              fix="re-save it with edgereid.models.checkpoint.save_checkpoint")
    return metadata


def load_checkpoint(path: str | Path, **overrides: Any) -> tuple[nn.Module, ModelCard]:
    """Rebuild the model named in the header, load its weights strictly, return it with its card."""
    from safetensors.torch import load_file

    header = read_checkpoint_header(path)
    try:
        stored_args = json.loads(header[META_ARGS])
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path} has unreadable model arguments", got=str(exc)[:120]) from exc
    if not isinstance(stored_args, dict):
        raise CheckpointError(f"{path} has malformed model arguments", expected="a JSON object",
                              got=type(stored_args).__name__)
    args = {**stored_args, **overrides}
    with torch.device("meta"):  # the header's arguments are checked against the file before any allocation
        probe = create_model(header[META_MODEL], **args)
    _check_state_matches(probe, _stored_shapes(path), path)
    model = create_model(header[META_MODEL], **args)
    state = load_file(str(path))
    model.load_state_dict(state, strict=True)
    card = ModelCard.from_json(header[META_CARD]) if header.get(META_CARD) else model_card(model)
    return model, card


def _stored_shapes(path: str | Path) -> dict[str, tuple[int, ...]]:
    """Every tensor's shape, read from the safetensors header (nothing is loaded)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        return {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}


def _check_state_matches(model: nn.Module, shapes: dict[str, tuple[int, ...]], path: str | Path) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(shapes))
    unexpected = sorted(set(shapes) - set(expected))
    wrong = [f"{k}: file {shapes[k]} vs model {tuple(v.shape)}"
             for k, v in expected.items() if k in shapes and tuple(shapes[k]) != tuple(v.shape)]
    if missing or unexpected or wrong:
        detail = "; ".join(filter(None, [
            f"missing {missing[:5]}" if missing else "", f"unexpected {unexpected[:5]}" if unexpected else "",
            f"shape mismatch {wrong[:5]}" if wrong else ""]))
        raise CheckpointError(f"weights in {path} do not fit model '{model.registry_name}'", got=detail,
                              fix="the header names a different architecture or arguments than the "
                                  "weights were trained with; re-save from the training run")
