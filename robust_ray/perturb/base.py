"""The perturbation registry: pure, vectorised, seeded functions on image batches.

An image perturbation is ``fn(x, level, seed, **ctx) -> x'`` with ``x`` a float32 batch
``[N, C, H, W]`` in [0, 1] and ``x'`` the same shape and range. It owns no state, reads no
globals, and gives the same output for the same (x, level, seed, ctx). Every registered
perturbation is usable both as a training-set factor (K perturbed copies per class added)
and as an evaluation suite (the test set at each level).

One number, the *level*, is what a sweep varies (an L2 distance, a density, degrees, a
number of pixels, a severity). Any further parameter is an *option*: a field of the
perturbation's pydantic ``options`` model, written next to ``levels`` in the spec and
passed to ``fn`` as a keyword (few_pixel's value range and area, the fixed stage of a
two-factor composition). Perturbations that need a model (FGSM) get ``model=`` and
``labels=`` in ``ctx``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict

from ..registry import Registry

PerturbFn = Callable[..., torch.Tensor]
Shape = tuple[int, int, int]  # C, H, W


class NoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class Perturbation:
    name: str
    fn: PerturbFn
    unit: str  # what a level measures, for plots and errors ("L2 distance", "degrees", ...)
    min_level: float | None = 0.0
    max_level: float | None = None
    max_inclusive: bool = True
    needs_model: bool = False  # FGSM and friends: ctx must hold model= and labels=
    options: type[BaseModel] = NoOptions
    integer: bool = False  # levels must be whole numbers (pixels, severities)
    identity: float | None = 0.0  # the level that changes nothing (None: no such level)
    # extra checks that need the options or the image shape: (level, options, shape) -> why
    limits: Callable[[float, BaseModel, Shape | None], str | None] | None = None
    description: str = ""
    # exact-L2 perturbations: fn(x, level, seed, **ctx) == scale_to_l2(x, direction(x, seed, **ctx), level),
    # so a suite computes the direction (a gradient, for FGSM) once for all its levels
    direction: PerturbFn | None = None

    def check_level(
        self, level: float, options: BaseModel | dict | None = None, shape: Shape | None = None
    ) -> str | None:
        """Why ``level`` is out of range for this perturbation, or None if it is fine.
        ``options`` (validated or raw) and the dataset's ``shape`` sharpen the check."""
        if not math.isfinite(level):
            return f"{self.name} level {level} is not a finite number"
        if self.integer and level != int(level):
            return f"{self.name} level {level} must be a whole number ({self.unit})"
        if self.min_level is not None and level < self.min_level:
            return f"{self.name} level {level:g} is below {self.min_level:g} ({self.unit})"
        if self.max_level is not None:
            over = level > self.max_level if self.max_inclusive else level >= self.max_level
            if over:
                bound = "at most" if self.max_inclusive else "below"
                return f"{self.name} level {level:g} must be {bound} {self.max_level:g} ({self.unit})"
        if self.limits is not None:
            return self.limits(level, self.parse_options(options), shape)
        return None

    def parse_options(self, options: BaseModel | dict | None) -> BaseModel:
        if isinstance(options, self.options):
            return options
        return self.options.model_validate(options or {})

    def is_identity(self, level: float) -> bool:
        return self.identity is not None and level == self.identity

    def __call__(
        self, x: torch.Tensor, level: float, seed: int, options: BaseModel | dict | None = None, **ctx
    ) -> torch.Tensor:
        """Apply at ``level`` with validated ``options`` (see the module doc)."""
        opts = self.parse_options(options).model_dump()
        return self.fn(x, level, seed, **opts, **ctx)


PERTURBATIONS: Registry[Perturbation] = Registry("perturbation")


def perturbation(name: str, unit: str, **kw) -> Callable[[PerturbFn], PerturbFn]:
    """Decorator: register ``fn`` as the perturbation ``name``."""

    def add(fn: PerturbFn) -> PerturbFn:
        PERTURBATIONS.register(name, Perturbation(name, fn, unit, description=(fn.__doc__ or "").strip(), **kw))
        return fn

    return add


def generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(int(seed) & 0x7FFF_FFFF_FFFF_FFFF)


def _store(dest: np.ndarray, y: torch.Tensor) -> None:
    """Write images in [0, 1] into ``dest``: float16 as is, uint8 rounded to 1/255 steps."""
    if dest.dtype == np.uint8:
        y = y.mul(255).round_()
    # torch's float32 -> float16 copy is vectorised; NumPy's cast is ~20x slower
    torch.from_numpy(dest).copy_(y)


def apply_levels(
    p: Perturbation,
    images: np.ndarray,
    levels: list[float],
    seed: int,
    options: BaseModel | dict | None = None,
    *,
    model: torch.nn.Module | None = None,
    labels: np.ndarray | None = None,
    chunk: int = 4096,
    out: list[np.ndarray] | None = None,
) -> list[np.ndarray]:
    """:func:`apply_to_array` at every level of ``levels``, with identical results, but a
    perturbation with a ``direction`` computes it once per chunk, and solves every level's
    exact-L2 scale from one sort of its clipping breakpoints (:func:`.l2.scale_to_l2_levels`)."""
    if p.direction is None:
        outs = out or [None] * len(levels)
        return [
            apply_to_array(p, images, lv, seed, options, model=model, labels=labels, chunk=chunk, out=o)
            for lv, o in zip(levels, outs)
        ]
    from ..data import to_float
    from ..seeding import derive_seed
    from .l2 import scale_to_l2_levels

    if p.needs_model and (model is None or labels is None):
        raise ValueError(f"perturbation {p.name} needs a reference model and the labels")
    opts = p.parse_options(options).model_dump()
    out = out or [np.empty(images.shape, np.float16) for _ in levels]
    for s in range(0, len(images), chunk):
        x = to_float(images[s : s + chunk])
        ctx = {"model": model, "labels": torch.as_tensor(labels[s : s + chunk])} if p.needs_model else {}
        with torch.no_grad():
            z = p.direction(x, derive_seed(seed, s), **opts, **ctx)
            moved = scale_to_l2_levels(x, z, [lv for lv in levels if not p.is_identity(lv)], out=torch.empty_like(x))
            for lv, o in zip(levels, out):  # one level's images at a time: the chunk x 24 would not fit
                _store(o[s : s + len(x)], x if p.is_identity(lv) else next(moved))
    return out


def apply_to_array(
    p: Perturbation,
    images: np.ndarray,
    level: float,
    seed: int,
    options: BaseModel | dict | None = None,
    *,
    model: torch.nn.Module | None = None,
    labels: np.ndarray | None = None,
    chunk: int = 4096,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """``p`` at ``level`` over a stored image array (uint8 or float), chunk by chunk, into
    ``out`` (float16 by default; uint8 rounds to 8-bit values). Chunk ``i`` gets seed ``derive_seed(seed, start)``, so a result depends on
    (images, level, seed, options, chunk) only; the same seed at another level perturbs
    the same images with the same random draw (common random numbers)."""
    from ..data import to_float
    from ..seeding import derive_seed

    if p.needs_model and (model is None or labels is None):
        raise ValueError(f"perturbation {p.name} needs a reference model and the labels")
    opts = p.parse_options(options)
    out = np.empty(images.shape, np.float16) if out is None else out
    for s in range(0, len(images), chunk):
        x = to_float(images[s : s + chunk])
        ctx = {}
        if p.needs_model:
            ctx = {"model": model, "labels": torch.as_tensor(labels[s : s + chunk])}
        with torch.no_grad():
            y = x if p.is_identity(level) else p(x, level, derive_seed(seed, s), opts, **ctx)
        _store(out[s : s + len(x)], y)
    return out
