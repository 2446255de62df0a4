"""CIFAR-size architectures (32x32) of 003 (AlexNet, ResNet-50, VGG-19) and 004
(Pre-activation ResNet-18). The 003 networks are torchvision's, built without weights
(nothing is downloaded) and adapted the usual way for 32x32 inputs; each adaptation is
listed on its factory. The channel count is free: grey images work too."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import MODELS, ModelDef

CIFAR = ((32, 32),)


def _tvm():
    """torchvision.models, imported on first use: importing it (and torch._dynamo with it)
    costs every process ~1.7 s and ~170 MiB, most of which never build a CIFAR network."""
    import torchvision.models

    return torchvision.models


def alexnet(in_channels: int, num_classes: int) -> nn.Module:
    """torchvision AlexNet; first conv 3x3/1 instead of 11x11/4 (which leaves a 1x1 map
    before the last pool on 32 px), so the features end at 256x3x3; the classifier keeps
    its 4096-unit layers, fed 2304 features instead of an up-sampled 256x6x6.
    28,711,754 parameters for 3 channels, 10 classes."""
    m = _tvm().alexnet(weights=None, num_classes=num_classes)
    m.features[0] = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1)
    m.avgpool = nn.Identity()
    m.classifier[1] = nn.Linear(256 * 3 * 3, 4096)
    return m


def resnet50(in_channels: int, num_classes: int) -> nn.Module:
    """torchvision ResNet-50; stem conv 3x3/1 and no stem max-pool (the CIFAR ResNet stem
    of He et al. 2016 §4.2), so the last stage sees 4x4 maps instead of 1x1.
    23,520,842 parameters for 3 channels, 10 classes."""
    m = _tvm().resnet50(weights=None, num_classes=num_classes)
    m.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
    m.maxpool = nn.Identity()
    return m


def _vgg19(batch_norm: bool):
    def build(in_channels: int, num_classes: int) -> nn.Module:
        tvm = _tvm()
        m = (tvm.vgg19_bn if batch_norm else tvm.vgg19)(weights=None, num_classes=num_classes)
        m.features[0] = nn.Conv2d(in_channels, 64, kernel_size=3, padding=1)
        m.avgpool = nn.Identity()  # five pools take 32 px to 1x1: 512 features
        m.classifier = nn.Sequential(
            nn.Linear(512, 512), nn.ReLU(inplace=True), nn.Dropout(0.5),
            nn.Linear(512, 512), nn.ReLU(inplace=True), nn.Dropout(0.5),
            nn.Linear(512, num_classes),
        )  # fmt: skip
        return m

    build.__doc__ = (
        f"torchvision VGG-19{' with batch norm' if batch_norm else ''}: convolutional part "
        "unchanged; classifier 512 -> 512 -> 512 -> classes (the 4096-unit layers sized for "
        "7x7x512 ImageNet features would hold 80% of the weights for 1x1x512 here). "
        f"{'20,565,834' if batch_norm else '20,554,826'} parameters for 3 channels, 10 classes."
    )
    return build


class PreActBlock(nn.Module):
    """Pre-activation basic block (He et al. 2016, "Identity Mappings", Fig. 4e)."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.shortcut = nn.Conv2d(c_in, c_out, 1, stride, bias=False) if stride != 1 or c_in != c_out else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(x))
        skip = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + skip


class PreActResNet18(nn.Module):
    """Pre-activation ResNet-18 for 32x32 inputs, the backbone of 004 §5: 3x3 stem, four
    stages of two blocks (64, 128, 256, 512 channels), the final BN-ReLU of He et al.
    (2016) §3.2, global average pool, linear.
    11,172,170 parameters for 3 channels, 10 classes (1,024 more than renditions that
    drop the final BN)."""

    def __init__(self, in_channels: int = 3, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False)
        blocks, c_in = [], 64
        for c_out, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            blocks += [PreActBlock(c_in, c_out, stride), PreActBlock(c_out, c_out, 1)]
            c_in = c_out
        self.layers = nn.Sequential(*blocks)
        self.bn = nn.BatchNorm2d(512)
        self.linear = nn.Linear(512, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn(self.layers(self.conv1(x))))
        return self.linear(torch.flatten(F.adaptive_avg_pool2d(out, 1), 1))


for _name, _factory, _what in (
    ("alexnet", alexnet, "torchvision AlexNet for 32x32, 003"),
    ("resnet50", resnet50, "torchvision ResNet-50 with CIFAR stem, 003"),
    ("vgg19", _vgg19(False), "torchvision VGG-19 for 32x32, 003"),
    ("vgg19_bn", _vgg19(True), "torchvision VGG-19 with batch norm for 32x32"),
    ("preact_resnet18", PreActResNet18, "Pre-activation ResNet-18, 004 §5"),
):
    MODELS.register(_name, ModelDef(_name, _factory, CIFAR, _what))
