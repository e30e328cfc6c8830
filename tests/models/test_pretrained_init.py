"""Pretrained initialisation (``init:``): torchvision's MobileNetV2 names and an earlier run's own names."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from edgereid.errors import CheckpointError
from edgereid.models import create_model
from edgereid.models.layers import MOBILENET_V2_STAGES
from edgereid.models.pretrained import initialise_from


def _conv_bn_relu6(cin, cout, kernel=3, stride=1, groups=1):
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU6())


class TorchvisionStyleBlock(nn.Module):
    """torchvision's ``InvertedResidual`` module layout: ``conv`` = [expand], depthwise, bare conv, batch norm."""

    def __init__(self, cin, cout, stride, expand):
        super().__init__()
        hidden = cin * expand
        layers = [_conv_bn_relu6(cin, hidden, 1)] if expand != 1 else []
        layers += [_conv_bn_relu6(hidden, hidden, 3, stride, hidden), nn.Conv2d(hidden, cout, 1, bias=False),
                   nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.conv(x) if self.residual else self.conv(x)


def _torchvision_layout_mobilenet_v2() -> nn.Module:
    """torchvision's ``mobilenet_v2()`` (width 1.0) module tree: ``features`` 0-18 and ``classifier.1``."""
    features, cin = [_conv_bn_relu6(3, 32, 3, 2)], 32
    for expand, channels, repeats, stride in MOBILENET_V2_STAGES:
        for i in range(repeats):
            features.append(TorchvisionStyleBlock(cin, channels, stride if i == 0 else 1, expand))
            cin = channels
    features.append(_conv_bn_relu6(cin, 1280, 1))
    model = nn.Module()
    model.features = nn.Sequential(*features)
    model.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, 1000))
    return model


def _randomise_batch_norms(model: nn.Module) -> None:
    generator = torch.Generator().manual_seed(3)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.copy_(torch.randn(module.num_features, generator=generator) * 0.1)
            module.running_var.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
            module.weight.data.copy_(torch.rand(module.num_features, generator=generator) + 0.5)


def test_torchvision_mobilenet_v2_weights_give_the_trunk_torchvisions_features(tmp_path):
    torch.manual_seed(0)
    reference = _torchvision_layout_mobilenet_v2().eval()
    _randomise_batch_norms(reference)
    path = tmp_path / "mobilenet_v2.safetensors"
    save_file({k: v.contiguous() for k, v in reference.state_dict().items()}, str(path))
    model = create_model("reid_teacher_w100", num_classes=7).eval()
    report = initialise_from(model, path)
    crops = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        torch.testing.assert_close(model.trunk(crops), reference.features[:18](crops), rtol=1e-4, atol=1e-4)
    assert report.loaded == len(model.trunk.state_dict())  # the whole trunk, nothing else
    assert {"classifier.1.weight", "trunk.features.18.0.weight"} <= set(report.unused)
    assert "classifier.weight" in report.kept and "bnneck.weight" in report.kept


def test_an_earlier_runs_checkpoint_initialises_all_but_the_classifier_and_wrong_files_are_refused(tmp_path):
    torch.manual_seed(0)
    earlier = create_model("test_reid", num_classes=5)
    path = tmp_path / "earlier.safetensors"
    save_file({k: v.contiguous() for k, v in earlier.state_dict().items()}, str(path))
    model = create_model("test_reid", num_classes=9)
    report = initialise_from(model, path)
    assert report.kept == ("classifier.weight",) and "classifier.weight" in report.unused
    for name, value in model.state_dict().items():
        if not name.startswith("classifier"):
            assert torch.equal(value, earlier.state_dict()[name]), name
    narrow = create_model("reid_mobilenet_w050").state_dict()
    save_file({k: v.contiguous() for k, v in narrow.items()}, str(tmp_path / "narrow.safetensors"))
    with pytest.raises(CheckpointError, match="other shapes") as caught:  # width 0.5 into a width-1.0 model
        initialise_from(create_model("reid_teacher_w100_128x64", num_classes=9), tmp_path / "narrow.safetensors")
    assert "trunk.features.0.0.weight" in caught.value.got
    save_file({"unrelated.weight": torch.zeros(3)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(CheckpointError, match="names one of the model's"):
        initialise_from(model, tmp_path / "other.safetensors")
    (tmp_path / "pickle.pth").write_bytes(b"\x80\x04not safetensors")
    with pytest.raises(CheckpointError, match="safetensors"):
        initialise_from(model, tmp_path / "pickle.pth")
