"""Architectures, registered by name. Each takes images [N, C, H, W] in [0, 1]."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .registry import Registry


@dataclass(frozen=True)
class ModelDef:
    name: str
    factory: Callable[[int, int], nn.Module]  # (in_channels, num_classes) -> module
    input_sizes: tuple[tuple[int, int], ...]  # (H, W) it accepts
    description: str

    def build(self, in_channels: int, num_classes: int, size: tuple[int, int]) -> nn.Module:
        if tuple(size) not in self.input_sizes:
            ok = ", ".join(f"{h}x{w}" for h, w in self.input_sizes)
            raise ValueError(f"{self.name} takes inputs of size {ok}, not {size[0]}x{size[1]}")
        return self.factory(in_channels, num_classes)


MODELS: Registry[ModelDef] = Registry("architecture")


class LeNet5(nn.Module):
    """LeNet-5 (LeCun et al. 1998) as used in 000 §2.1: 28x28 digits padded to 32x32,
    C1 6@5x5, S2, C3 16@5x5, S4, F5 120, F6 84, output 10 (61,706 parameters for 1 channel).
    ReLU and max-pooling replace the original squashing and trainable subsampling, as in
    the common PyTorch rendition; the layer sizes are the paper's."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] == 28:
            x = F.pad(x, (2, 2, 2, 2))
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


MODELS.register("lenet5", ModelDef("lenet5", LeNet5, ((28, 28), (32, 32)), "LeNet-5, 000 §2.1"))


def build_model(name: str, in_channels: int, num_classes: int, size: tuple[int, int]) -> nn.Module:
    return MODELS.get(name).build(in_channels, num_classes, size)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
