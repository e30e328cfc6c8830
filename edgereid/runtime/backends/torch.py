"""PyTorch backend: the checkpoint itself (eager, or ``torch.compile``d), behind the same protocol.

It is the reference the exported graphs are checked against, and the way to time the GPU path on
machines where neither ONNX Runtime's GPU build nor TensorRT is installed. Inputs may be NumPy batches
or torch tensors already on the device (zero-copy; anything with DLPack converts through
``torch.from_dlpack``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgereid.errors import BackendError, InputError


class TorchBackend:
    """A registered edgereid model rebuilt from its safetensors checkpoint."""

    name = "torch"

    def __init__(self, checkpoint: str | Path, device: str = "cpu", compile: bool = False,
                 half: bool = False) -> None:
        import torch

        from edgereid.models.checkpoint import load_checkpoint

        if device.startswith("cuda") and not torch.cuda.is_available():
            raise BackendError(f"torch cannot use device '{device}'", got="torch.cuda.is_available() is False",
                               fix="install a CUDA build of torch on a GPU machine, or use device='cpu'")
        model, self.card = load_checkpoint(checkpoint)
        self.device = torch.device(device)
        self.dtype = torch.float16 if half else torch.float32
        model = model.to(self.device, self.dtype).eval()
        self.model = torch.compile(model) if compile else model
        self.providers = (f"torch:{self.device}{':compiled' if compile else ''}{':fp16' if half else ''}",)
        self.max_batch = None
        self._names = [o.name for o in self.card.outputs]

    def infer(self, batch) -> dict[str, np.ndarray]:
        """Outputs by the card's names, as float32 NumPy arrays."""
        outputs = self.infer_device(batch)
        return {name: value.float().cpu().numpy() for name, value in outputs.items()}

    def infer_device(self, batch) -> dict[str, object]:
        """Outputs by name as torch tensors on the backend's device (no copy back)."""
        import torch

        tensor = self._as_tensor(batch)
        expected = (3, self.card.input.height, self.card.input.width)
        if tensor.ndim != 4 or tuple(tensor.shape[1:]) != expected:
            raise InputError("batch has the wrong shape", expected=f"[N, {expected[0]}, {expected[1]}, {expected[2]}]",
                             got=str(tuple(tensor.shape)))
        with torch.inference_mode():
            out = self.model(tensor.to(self.device, self.dtype, non_blocking=True))
        values = out if isinstance(out, (tuple, list)) else (out,)
        if len(values) != len(self._names):
            raise BackendError("the model returns a different number of outputs than its card declares",
                               expected=str(self._names), got=f"{len(values)} tensors")
        return dict(zip(self._names, values))

    @staticmethod
    def _as_tensor(batch):
        import torch

        if isinstance(batch, np.ndarray):
            return torch.from_numpy(np.ascontiguousarray(batch))
        if isinstance(batch, torch.Tensor):
            return batch
        if hasattr(batch, "__dlpack__"):
            return torch.from_dlpack(batch)
        raise InputError("unsupported batch type", expected="numpy array, torch tensor or a DLPack object",
                         got=type(batch).__name__)
