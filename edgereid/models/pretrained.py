"""Pretrained initialisation of a model from a local safetensors file (``init:`` in the DCAC configs).

The file holds a state dict in edgereid's own names (the ``model.safetensors`` of an earlier run) or in
torchvision's MobileNetV2 names (``features.N.conv...``): the ImageNet weights that ReID CNNs usually start from,
converted once to safetensors, since nothing is unpickled here::

    python -c "import torch; from safetensors.torch import save_file; \\
        save_file(torch.load('mobilenet_v2-b0353104.pth', weights_only=True), 'mobilenet_v2.safetensors')"

Tensors whose name and shape match are copied. The classifier, whose size follows the identity count, is never
taken. A tensor whose name matches but whose shape does not is an error (another width or architecture), and so
is a file of which nothing matches; what the file has beyond the model (torchvision's last 1x1 convolution and
ImageNet classifier) is reported as unused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from edgereid.errors import CheckpointError
from edgereid.models.checkpoint import safetensors_metadata

NEVER_TAKEN = ("classifier.",)
_TORCHVISION_BLOCK = re.compile(r"^features\.(\d+)\.conv\.(\d+)\.(.+)$")
_FIX = "pass a .safetensors state dict of this model (an earlier run's model.safetensors) or of torchvision's " \
       "MobileNetV2 at the same width (see edgereid.models.pretrained for the conversion)"


@dataclass(frozen=True)
class InitReport:
    """What an initialisation took: ``loaded`` tensors, the file's ``unused`` names, the model's ``kept`` ones
    (left as initialised, e.g. the embedding projection and the BNNeck)."""

    loaded: int
    unused: tuple[str, ...]
    kept: tuple[str, ...]

    def summary(self) -> str:
        """One line for the run log, naming up to four of the tensors left as initialised."""
        kept = ", ".join(self.kept[:4]) + (" ..." if len(self.kept) > 4 else "")
        return (f"{self.loaded} tensors loaded, {len(self.kept)} of the model kept as initialised"
                f"{f' ({kept})' if kept else ''}, {len(self.unused)} of the file unused")


def from_torchvision_mobilenet_v2(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """torchvision's ``mobilenet_v2`` names in the ReID trunk's (:class:`~edgereid.models.layers.MobileNetV2Trunk`).

    The stem ``features.0`` is the same module; in an inverted residual block torchvision ends with a bare
    convolution and a batch norm (``conv.{L-2}``, ``conv.{L-1}``) where the trunk has one conv-BN module
    (``block.{L-2}.0``, ``block.{L-2}.1``); the layers before keep their index (``conv.i.j`` -> ``block.i.j``)."""
    lengths: dict[str, int] = {}
    for name in state:
        match = _TORCHVISION_BLOCK.match(name)
        if match:
            lengths[match[1]] = max(lengths.get(match[1], 0), int(match[2]) + 1)
    translated = {}
    for name, tensor in state.items():
        match = _TORCHVISION_BLOCK.match(name)
        if match:
            block, layer, rest = match[1], int(match[2]), match[3]
            last = lengths[block] - 2
            if layer < last:  # conv-BN-activation modules, numbered alike
                name = f"trunk.features.{block}.block.{layer}.{rest}"
            else:  # the bare projection convolution (layer == last) and its batch norm (last + 1)
                name = f"trunk.features.{block}.block.{last}.{layer - last}.{rest}"
        elif name.startswith("features."):
            name = "trunk." + name
        translated[name] = tensor
    return translated


def initialise_from(model: nn.Module, path: str | Path) -> InitReport:
    """Copy the matching tensors of the safetensors file ``path`` into ``model`` (see the module's rules)."""
    from safetensors.torch import load_file

    safetensors_metadata(path, fix=_FIX)  # bounded header, a real safetensors file
    state = load_file(str(path))
    if any(name.startswith("features.") for name in state):
        state = from_torchvision_mobilenet_v2(state)
    own = model.state_dict()
    wanted = {name: tensor for name, tensor in state.items() if name in own and not name.startswith(NEVER_TAKEN)}
    wrong = [f"{name} {tuple(tensor.shape)} (model: {tuple(own[name].shape)})"
             for name, tensor in wanted.items() if tensor.shape != own[name].shape]
    if wrong:
        raise CheckpointError(f"{path} does not fit the model: {len(wrong)} tensors have other shapes",
                              expected="the model's shapes (same architecture and width)", got="; ".join(wrong[:3]),
                              fix=_FIX)
    if not wanted:
        raise CheckpointError(f"no tensor of {path} names one of the model's",
                              expected=f"names such as {next(iter(own))}",
                              got=f"names such as {next(iter(state), '-')}", fix=_FIX)
    with torch.no_grad():
        for name, tensor in wanted.items():
            own[name].copy_(tensor)
    return InitReport(len(wanted), tuple(sorted(set(state) - set(wanted))),
                      tuple(sorted(set(own) - set(wanted))))
