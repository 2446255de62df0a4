"""The perturbation registry: pure, vectorised, seeded functions on image batches.

An image perturbation is ``fn(x, level, seed, **ctx) -> x'`` with ``x`` a float32 batch
``[N, C, H, W]`` in [0, 1] and ``x'`` the same shape and range. It owns no state, reads no
globals, and gives the same output for the same (x, level, seed). Every registered
perturbation is usable both as a training-set factor (K perturbed copies per class added)
and as an evaluation suite (the test set at each level).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from ..registry import Registry

PerturbFn = Callable[..., torch.Tensor]


@dataclass(frozen=True)
class Perturbation:
    name: str
    fn: PerturbFn
    unit: str  # what a level measures, for plots and errors ("L2 distance", "degrees", ...)
    min_level: float | None = 0.0
    max_level: float | None = None
    max_inclusive: bool = True
    needs_model: bool = False  # FGSM and friends: ctx must hold model= and labels=

    def check_level(self, level: float) -> str | None:
        """Why ``level`` is out of range for this perturbation, or None if it is fine."""
        if self.min_level is not None and level < self.min_level:
            return f"{self.name} level {level} is below {self.min_level} ({self.unit})"
        if self.max_level is not None:
            over = level > self.max_level if self.max_inclusive else level >= self.max_level
            if over:
                bound = "at most" if self.max_inclusive else "below"
                return f"{self.name} level {level} must be {bound} {self.max_level} ({self.unit})"
        return None


PERTURBATIONS: Registry[Perturbation] = Registry("perturbation")


def perturbation(name: str, unit: str, **kw) -> Callable[[PerturbFn], PerturbFn]:
    """Decorator: register ``fn`` as the perturbation ``name``."""

    def add(fn: PerturbFn) -> PerturbFn:
        PERTURBATIONS.register(name, Perturbation(name, fn, unit, **kw))
        return fn

    return add


def generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(int(seed) & 0x7FFF_FFFF_FFFF_FFFF)
