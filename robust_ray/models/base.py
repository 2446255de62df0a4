"""The architecture registry, and the one contract every model keeps.

A model takes images ``[B, C, H, W]`` in [0, 1] and returns class scores ``[B, K]``; the
prediction is their argmax. Its training objective is cross-entropy on those scores unless
the model defines ``training_loss(x, target)`` (MoCSE does: 004 §4.3). Recipes never call
``F.cross_entropy`` themselves; they call :func:`training_loss`, so every recipe trains
every architecture with that architecture's own objective.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import Registry


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


@dataclass(frozen=True)
class Wrapper:
    """A family of architectures built around any registered base: ``<prefix>:<base>``."""

    prefix: str
    wrap: Callable[[ModelDef], ModelDef]
    description: str


class ModelRegistry(Registry[ModelDef]):
    """Plain names (``lenet5``) plus wrapped ones (``mocse:lenet5``), resolved on lookup so
    a wrapper works around every base, including bases registered later."""

    def __init__(self):
        super().__init__("architecture")
        self.wrappers: dict[str, Wrapper] = {}

    def register_wrapper(self, wrapper: Wrapper) -> Wrapper:
        if wrapper.prefix in self.wrappers:
            raise ValueError(f"architecture wrapper {wrapper.prefix!r} is registered twice")
        self.wrappers[wrapper.prefix] = wrapper
        return wrapper

    def get(self, name: str) -> ModelDef:
        prefix, sep, base = name.partition(":")
        if sep and prefix in self.wrappers and base in self._items:
            return self.wrappers[prefix].wrap(self._items[base])
        return super().get(name)

    def __contains__(self, name: object) -> bool:
        if isinstance(name, str):
            prefix, sep, base = name.partition(":")
            if sep:
                return prefix in self.wrappers and base in self._items
        return super().__contains__(name)

    def unknown(self, name: str) -> str:
        wrapped = "".join(f", {p}:<any of these>" for p in sorted(self.wrappers))
        return super().unknown(name) + wrapped


MODELS = ModelRegistry()


def build_model(name: str, in_channels: int, num_classes: int, size: tuple[int, int]) -> nn.Module:
    return MODELS.get(name).build(in_channels, num_classes, size)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def training_loss(model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The batch loss the model is trained on. ``target`` is class indices ``[B]`` (int64)
    or class probabilities ``[B, K]`` (soft labels from Mixup or TLAT, 001)."""
    own = getattr(model, "training_loss", None)
    if own is not None:
        return own(x, target)
    return F.cross_entropy(model(x), target)
