"""ONNX export with the model card embedded and parity with torch checked before the file lands.

The legacy TorchScript exporter is used at opset 17 by default: the dynamo exporter cannot write
below opset 18, and TensorRT 10.3 (JetPack 6) parsers are safest at 17 (docs/environment.md §2).
"""

from __future__ import annotations

import io
import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgereid.card import ModelCard, Provenance, file_sha256, set_card_metadata
from edgereid.errors import ExportError
from edgereid.fileio import atomic_write_bytes
from edgereid.ort_session import open_session
from edgereid.version import __version__

EMBEDDING_MIN_COSINE = 0.9999
KEYPOINT_MAX_PIXELS = 0.5


@dataclass(frozen=True)
class ParityReport:
    """Worst agreement between torch and ONNX Runtime over the checked batch sizes."""

    batch_sizes: tuple[int, ...]
    min_cosine: float | None = None
    max_keypoint_px: float | None = None

    def summary(self) -> str:
        parts = [f"batches {list(self.batch_sizes)}"]
        if self.min_cosine is not None:
            parts.append(f"min embedding cosine {self.min_cosine:.6f} (needs >= {EMBEDDING_MIN_COSINE})")
        if self.max_keypoint_px is not None:
            parts.append(f"max keypoint error {self.max_keypoint_px:.4f} px (needs <= {KEYPOINT_MAX_PIXELS})")
        return ", ".join(parts)


def export_onnx(model: nn.Module, card: ModelCard, out_path: str | Path, *, opset: int = 17,
                parity_batches: tuple[int, ...] = (1, 4), seed: int = 0) -> ParityReport:
    """Export ``model`` (eval mode, dynamic batch) with ``card`` embedded; check it; write atomically."""
    import onnx

    model = model.eval()
    spec = card.input
    example = torch.randn(2, 3, spec.height, spec.width)
    output_names = [o.name for o in card.outputs]
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (example,), buffer, input_names=[spec.name], output_names=output_names,
                          dynamic_axes={name: {0: "batch"} for name in [spec.name, *output_names]},
                          opset_version=opset, dynamo=False)
    proto = onnx.load_from_string(buffer.getvalue())
    set_card_metadata(proto, card)
    try:
        onnx.checker.check_model(proto, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise ExportError("exported graph fails onnx.checker", got=str(exc).splitlines()[0]) from exc
    data = proto.SerializeToString()
    report = check_parity(model, card, data, parity_batches, seed)
    atomic_write_bytes(out_path, data)
    return report


def check_parity(model: nn.Module, card: ModelCard, onnx_bytes: bytes, batch_sizes: tuple[int, ...],
                 seed: int = 0) -> ParityReport:
    """Compare torch and ONNX Runtime outputs on random inputs; raise ExportError below the bar."""

    session = open_session(onnx_bytes, error=ExportError)
    generator = torch.Generator().manual_seed(seed)
    spec = card.input
    cosines, pixel_errors = [], []
    for batch in batch_sizes:
        x = torch.randn(batch, 3, spec.height, spec.width, generator=generator)
        with torch.no_grad():
            expected = model(x)
        expected = expected if isinstance(expected, tuple) else (expected,)
        got = session.run([o.name for o in card.outputs], {spec.name: x.numpy()})
        for out_spec, want, have in zip(card.outputs, expected, got):
            want = want.numpy()
            if out_spec.kind == "embedding":
                cos = (want * have).sum(1) / (np.linalg.norm(want, axis=1) * np.linalg.norm(have, axis=1))
                cosines.append(float(cos.min()))
            elif out_spec.kind == "coords":
                pixel_errors.append(float(np.linalg.norm(want - have, axis=-1).max()))
    report = ParityReport(tuple(batch_sizes), min(cosines) if cosines else None,
                          max(pixel_errors) if pixel_errors else None)
    if (report.min_cosine is not None and report.min_cosine < EMBEDDING_MIN_COSINE) or (
            report.max_keypoint_px is not None and report.max_keypoint_px > KEYPOINT_MAX_PIXELS):
        raise ExportError("ONNX Runtime disagrees with torch", got=report.summary(),
                          fix="check for ops whose export semantics differ (e.g. resize modes)")
    return report


def export_checkpoint(checkpoint: str | Path, out_path: str | Path, *, opset: int = 17) -> ParityReport:
    """Rebuild a model from its checkpoint header and export it, provenance filled in."""
    from edgereid.models.checkpoint import load_checkpoint, read_checkpoint_header

    model, card = load_checkpoint(checkpoint)
    header = read_checkpoint_header(checkpoint)
    fingerprint = header.get("edgereid.config_fingerprint", "")
    provenance = Provenance(checkpoint_sha256=file_sha256(checkpoint), config_fingerprint=fingerprint,
                            edgereid_version=__version__,
                            source=json.dumps({"checkpoint": Path(checkpoint).name,
                                               **({"trained": card.provenance.source} if card.provenance.source else {})}))
    return export_onnx(model, card.replace(provenance=provenance), out_path, opset=opset)
