"""Experimental designs: which combinations of factor levels become training sets.

A design maps ``{factor: (levels, baseline)}`` (and, for ``list``, the spec's explicit
rows) to rows ``{factor: level}``; a level of None means "leave the data untouched by this
factor". Rows are crossed with architectures and seeds by the planner.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

from .registry import Registry

Row = dict[str, float | None]
Factors = dict[str, tuple[list[float], float | None]]
Design = Callable[[Factors, list[Row]], list[Row]]
DESIGNS: Registry[Design] = Registry("design")


@DESIGNS.register("grid")
def grid(factors: Factors, rows: list[Row]) -> list[Row]:
    """Full factorial: every combination of every factor's levels (000 RQ5's 6x6 grid)."""
    names = list(factors)
    return [dict(zip(names, combo)) for combo in itertools.product(*(factors[n][0] for n in names))]


@DESIGNS.register("one_factor")
def one_factor(factors: Factors, rows: list[Row]) -> list[Row]:
    """Each factor alone at each of its levels, the others at their baseline, plus the
    all-baseline row once (000 RQ1-RQ4: single-factor studies sharing the clean model)."""
    base = {n: b for n, (_, b) in factors.items()}
    out = [dict(base)]
    for name, (levels, baseline) in factors.items():
        out += [{**base, name: lv} for lv in levels if lv != baseline]
    return out


def _columns(array) -> list[int]:
    """Level count of each column. Read from the array itself: some of pyDOE3's names do
    not match their arrays (its 'L36(3^23)' holds 11 two-level columns)."""
    return [len(set(array[:, j].tolist())) for j in range(array.shape[1])]


def choose_orthogonal_array(level_counts: list[int]) -> tuple[str, list[int]]:
    """The smallest Taguchi array (pyDOE3's catalogue) with a distinct column of the right
    level count for every factor; returns its name and the column given to each factor."""
    from pyDOE3 import get_orthogonal_array, list_orthogonal_arrays

    for name in sorted(list_orthogonal_arrays(), key=array_runs):
        free = list(enumerate(_columns(get_orthogonal_array(name))))
        assigned = []
        for n in level_counts:
            col = next((i for i, c in free if c == n), None)
            if col is None:
                break
            assigned.append(col)
            free = [(i, c) for i, c in free if i != col]
        else:
            return name, assigned
    counts = ", ".join(map(str, level_counts))
    raise ValueError(f"no orthogonal array in pyDOE3's catalogue fits factors with {counts} levels")


def grid_size(level_counts: list[int]) -> int:
    return math.prod(level_counts)


def array_runs(name: str) -> int:
    """Runs of a pyDOE3 array from its name ('L36(3^23)' -> 36)."""
    return int(name[1 : name.index("(")])


def orthogonal_fallback(level_counts: list[int]) -> str | None:
    """Why an ``orthogonal`` design runs the full grid instead, or None when the array is
    smaller: the smallest array fitting few factors can need more runs than the grid
    (levels 2 x 3: L36 against a 6-run grid; 4 x 2: L32 against 8), and the grid is
    then orthogonal too, with every combination. ``validate`` prints this line."""
    name, _ = choose_orthogonal_array(level_counts)
    if array_runs(name) <= grid_size(level_counts):
        return None
    return (
        f"orthogonal: the smallest array for levels {' x '.join(map(str, level_counts))} is {name} ({array_runs(name)} runs), "
        f"more than the full grid ({grid_size(level_counts)} runs); running the grid"
    )


@DESIGNS.register("orthogonal")
def orthogonal(factors: Factors, rows: list[Row]) -> list[Row]:
    """A Taguchi orthogonal array (000 §2.2.5: 4 factors x 5 levels -> L25): every pair of
    factors sees every pair of levels equally often, in far fewer runs than the grid. Where
    the array would need more runs than the grid, the grid (:func:`orthogonal_fallback`)."""
    from pyDOE3 import get_orthogonal_array

    names = list(factors)
    counts = [len(factors[n][0]) for n in names]
    if orthogonal_fallback(counts) is not None:
        return grid(factors, rows)
    oa_name, cols = choose_orthogonal_array(counts)
    array = get_orthogonal_array(oa_name)
    return [{n: factors[n][0][int(run[c])] for n, c in zip(names, cols)} for run in array]


@DESIGNS.register("list")
def listed(factors: Factors, rows: list[Row]) -> list[Row]:
    """Explicit rows (``design.rows`` in the spec); a factor a row leaves out is at its baseline."""
    base = {n: b for n, (_, b) in factors.items()}
    return [{**base, **row} for row in rows]
