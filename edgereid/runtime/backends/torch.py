"""PyTorch backend: the checkpoint itself (eager, or ``torch.compile``d), behind the same base class.

It is the reference the exported graphs are checked against, and the way to time the GPU path on
machines where neither ONNX Runtime's GPU build nor TensorRT is installed. Inputs may be NumPy batches
or torch tensors already on the device (zero-copy; anything with DLPack converts through
``torch.from_dlpack``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgereid.errors import BackendError, InputError
from edgereid.runtime.backends.base import Backend


class TorchBackend(Backend):
    """A registered edgereid model rebuilt from its safetensors checkpoint."""

    name = "torch"

    def __init__(self, checkpoint: str | Path, device: str = "cpu", compile: bool = False,
                 half: bool = False) -> None:
        import torch

        # The one allowed upward import of the layout: a checkpoint names a registered training model.
        from edgereid.models.checkpoint import load_checkpoint

        if device.startswith("cuda") and not torch.cuda.is_available():
            raise BackendError(f"torch cannot use device '{device}'", got="torch.cuda.is_available() is False",
                               fix="install a CUDA build of torch on a GPU machine, or use device='cpu'")
        model, self.card = load_checkpoint(checkpoint)
        self.device = torch.device(device)
        self.dtype = torch.float16 if half else torch.float32
        model = model.to(self.device, self.dtype).eval()
        self.model: Any = torch.compile(model) if compile else model
        self.providers = (f"torch:{self.device}{':compiled' if compile else ''}{':fp16' if half else ''}",)
        self._names = [o.name for o in self.card.outputs]

    def _infer(self, batch: Any) -> dict[str, np.ndarray]:
        """Outputs by the card's names, as float32 NumPy arrays."""
        return {name: value.float().cpu().numpy() for name, value in self._run(batch).items()}

    def infer_device(self, batch: Any) -> dict[str, Any]:
        """Outputs by name as torch tensors on the backend's device (no copy back)."""
        self.check_batch(batch)
        return self._run(batch)

    def _run(self, batch: Any) -> dict[str, Any]:
        import torch

        with torch.inference_mode():
            out = self.model(_as_tensor(batch).to(self.device, self.dtype, non_blocking=True))
        values = out if isinstance(out, (tuple, list)) else (out,)
        if len(values) != len(self._names):
            raise BackendError("the model returns a different number of outputs than its card declares",
                               expected=str(self._names), got=f"{len(values)} tensors")
        return dict(zip(self._names, values))

    def _release(self) -> None:
        import torch

        self.model = None
        if self.device.type == "cuda":
            torch.cuda.empty_cache()  # hand the cached blocks of this model's weights back to the driver


def _as_tensor(batch: Any) -> Any:
    import torch

    if isinstance(batch, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(batch))
    if isinstance(batch, torch.Tensor):
        return batch
    if hasattr(batch, "__dlpack__"):
        return torch.from_dlpack(batch)
    raise InputError("unsupported batch type", expected="numpy array, torch tensor or a DLPack object",
                     got=type(batch).__name__)
