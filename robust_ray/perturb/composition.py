"""Two-factor sequential perturbations (Dai & Berleant, 003): one perturbation, then another.

``a>b`` applies ``a`` first and ``b`` to its result, for a, b in {sp, gaussian, rotation}
(salt_pepper, gaussian_var, rotation). A sweep varies one stage; the other is fixed by an
option: ``first: 0.1`` sweeps the second stage at the factor's levels (SP0.1GA<level> for
``sp>gaussian``), ``second: 30`` sweeps the first. Order matters: gaussian>sp leaves exact
0s and 1s from the salt & pepper, sp>gaussian blurs them with noise.
"""

from __future__ import annotations

import itertools
from functools import partial

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..seeding import derive_seed
from .base import PERTURBATIONS, Perturbation, Shape

STAGES = {"sp": "salt_pepper", "gaussian": "gaussian_var", "rotation": "rotation"}


class CompositionOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    first: float | None = Field(None, description="fixed level of the first stage (the levels sweep the second)")
    second: float | None = Field(None, description="fixed level of the second stage (the levels sweep the first)")

    @model_validator(mode="after")
    def _one_fixed(self):
        if (self.first is None) == (self.second is None):
            raise ValueError(
                "a two-factor composition needs exactly one fixed stage: `first: LEVEL` or `second: LEVEL`"
            )
        return self

    def stage_levels(self, level: float) -> tuple[float, float]:
        return (self.first, level) if self.first is not None else (level, self.second)


def _compose(a: str, b: str, x: torch.Tensor, level: float, seed: int, first=None, second=None) -> torch.Tensor:
    la, lb = CompositionOptions(first=first, second=second).stage_levels(level)
    pa, pb = PERTURBATIONS.get(STAGES[a]), PERTURBATIONS.get(STAGES[b])
    y = x if pa.is_identity(la) else pa(x, la, derive_seed(seed, a, 0))
    return y if pb.is_identity(lb) else pb(y, lb, derive_seed(seed, b, 1))


def _limits(a: str, b: str, level: float, options: CompositionOptions, shape: Shape | None) -> str | None:
    la, lb = options.stage_levels(level)
    for stage, lv in ((a, la), (b, lb)):
        if (why := PERTURBATIONS.get(STAGES[stage]).check_level(lv, None, shape)) is not None:
            return f"{a}>{b}: {why}"
    return None


def composition_name(a: str, b: str) -> str:
    return f"{a}>{b}"


for _a, _b in itertools.permutations(STAGES, 2):
    PERTURBATIONS.register(
        composition_name(_a, _b),
        Perturbation(
            composition_name(_a, _b),
            partial(_compose, _a, _b),
            unit=f"{STAGES[_a]} then {STAGES[_b]} (the swept stage's unit)",
            min_level=None,
            identity=None,  # level 0 of the swept stage still applies the fixed one
            options=CompositionOptions,
            limits=partial(_limits, _a, _b),
            description=f"{STAGES[_a]} then {STAGES[_b]}, 003 two-factor perturbation",
        ),
    )
