"""Experimental designs: which combinations of factor levels become training sets.

A design maps ``{factor: (levels, baseline)}`` to rows ``{factor: level}``; a level of
None means "leave the data untouched by this factor". Rows are crossed with
architectures and seeds by the planner.
"""

from __future__ import annotations

import itertools
from typing import Callable

from .registry import Registry

Row = dict[str, float | None]
Design = Callable[[dict[str, tuple[list[float], float | None]]], list[Row]]
DESIGNS: Registry[Design] = Registry("design")


@DESIGNS.register("grid")
def grid(factors: dict[str, tuple[list[float], float | None]]) -> list[Row]:
    """Full factorial: every combination of every factor's levels (000 RQ5's 6x6 grid)."""
    names = list(factors)
    return [dict(zip(names, combo)) for combo in itertools.product(*(factors[n][0] for n in names))]


@DESIGNS.register("one_factor")
def one_factor(factors: dict[str, tuple[list[float], float | None]]) -> list[Row]:
    """Each factor alone at each of its levels, the others at their baseline, plus the
    all-baseline row once (000 RQ1-RQ4: single-factor studies sharing the clean model)."""
    base = {n: b for n, (_, b) in factors.items()}
    rows = [dict(base)]
    for name, (levels, baseline) in factors.items():
        rows += [{**base, name: lv} for lv in levels if lv != baseline]
    return rows
