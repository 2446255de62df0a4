"""Training recipes, registered by name: how a model is fitted to a composed training set.

A recipe is ``fn(model, train, settings, seed, device, on_epoch) -> FitResult``.
"""

from __future__ import annotations

from typing import Callable

from .registry import Registry
from .train import FitResult, fit

Recipe = Callable[..., FitResult]
RECIPES: Registry[Recipe] = Registry("training recipe")
RECIPES.register("standard", fit)
