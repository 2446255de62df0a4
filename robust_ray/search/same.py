"""Whether a results folder's trial was trained the way this search trains its points.

Warm start may feed the study only trials that are points of this search: at a point's
levels, the same training set and the same fit would give the same model. Besides the levels
(:mod:`.warm`), that takes the same architecture, seed, recipe, recipe options and training
settings (except those this search varies: they are coordinates of the point), and the same
options of each searched factor (``per_class``, its reference model, the perturbation's own)
wherever the trial used it.
:func:`difference` names the first thing that differs, the reason a trial is left out.
"""

from __future__ import annotations

import math
from numbers import Real

import pandas as pd
from pydantic import BaseModel, ValidationError

from ..factors import factor_def
from ..recipes import RECIPES
from ..spec import FactorSpec, ReferenceSpec, SweepSpec, TrainingSpec
from .dims import factor_spec, option_column, searched_factors, split, training_column

# how a run executes, not what it learns: the fit is the same whatever these are
RUNTIME = {"eval_batch_size", "device"}
# compared through the trial's recipe (a sweep's ``recipes`` overrides them)
RECIPE = {"recipe", "recipe_options"}


def _normal(model: type[BaseModel], d: dict) -> dict:
    """``d`` with the model's defaults filled in, so an option left at its default and the
    same option written out compare equal (as given, if it no longer validates)."""
    try:
        return model.model_validate(d).model_dump(mode="json")
    except ValidationError:
        return dict(d)


def _equal(a, b) -> bool:
    """Settings equal; numbers within rounding (a column read back from Parquet is numpy)."""
    if isinstance(a, bool) or isinstance(b, bool) or not (isinstance(a, Real) and isinstance(b, Real)):
        return bool(a == b)
    return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=0.0)


def _missing(v) -> bool:
    return v is None or (isinstance(v, Real) and pd.isna(v)) or v is pd.NA


def training_value(row: pd.Series, training: dict, setting: str):
    """A trial's training ``setting``: its own column where the folder searched it
    (``training.lr``), else the folder's ``training`` section (:func:`their_training`)."""
    v = row.get(training_column(setting))
    return training.get(setting) if _missing(v) else v


def their_training(other: dict) -> dict:
    """The folder's training section, defaults filled in."""
    return _normal(TrainingSpec, other.get("training") or {})


def _recipe_options(other: dict, recipe: str) -> dict | None:
    if other.get("recipes") is not None:
        opts = other["recipes"].get(recipe)
        return None if opts is None and recipe not in other["recipes"] else dict(opts or {})
    training = other.get("training") or {}
    return dict(training.get("recipe_options") or {}) if training.get("recipe", "standard") == recipe else None


def their_options(row: pd.Series, other: dict, recipe: str) -> dict | None:
    """The recipe options the folder's trial ``row`` trained with, defaults filled in (None:
    the folder has no such recipe): the folder's, with any it searched from the row's own
    ``training.recipe_options.<key>`` columns."""
    opts = _recipe_options(other, recipe)
    if opts is None:
        return None
    for col, v in row.items():
        if isinstance(col, str) and split(col)[0] == "option" and not _missing(v):
            opts[split(col)[1]] = v.item() if hasattr(v, "item") else v  # numpy, from Parquet
    return _normal(RECIPES.get(recipe).options, opts)


def _factor(f: str, fs: FactorSpec | dict, arch: str, seed: int) -> dict:
    """A factor's options and reference model, normalised (an unset reference is the
    trial's own architecture and seed). ``fs``: this spec's (typed at load) or a folder's
    sweep.json entry (a dict, normalised here)."""
    if isinstance(fs, FactorSpec):
        options, ref = fs.options.model_dump(mode="json"), fs.reference
    else:
        extra = {k: v for k, v in fs.items() if k not in FactorSpec.model_fields}
        options, ref = _normal(factor_def(f).options, extra), ReferenceSpec.model_validate(fs.get("reference") or {})
    return {"options": options, "reference": (ref.arch or arch, seed if ref.seed is None else ref.seed)}


def difference(spec: SweepSpec, row: pd.Series, other: dict, training: dict) -> str | None:
    """What about the folder's trial ``row`` differs from how this search trains a point
    (None: nothing; its levels are :mod:`.warm`'s business). ``training``: the folder's
    :func:`their_training`."""
    arch, seed = spec.architectures[0], spec.seeds[0]
    if row.get("arch") != arch:
        return "other architecture"
    if _missing(row.get("seed")) or int(row["seed"]) != seed:
        return "other seed"
    recipe, options = spec.recipe_list()[0]
    if (row.get("recipe") if not _missing(row.get("recipe")) else "standard") != recipe:
        return "other recipe"
    theirs, mine = their_options(row, other, recipe), _normal(RECIPES.get(recipe).options, options)
    # a searched option is a coordinate of the point (warm.py reads it), not a difference
    if theirs is None or any(
        not _equal(theirs.get(k), v) for k, v in mine.items() if option_column(k) not in spec.search.space
    ):
        return "other recipe options"
    searched = {own for kind, own in map(split, spec.search.space) if kind == "training"}
    for setting, v in spec.training.model_dump(mode="json").items():
        if setting not in searched | RUNTIME | RECIPE and not _equal(training_value(row, training, setting), v):
            return f"other training.{setting}"
    factors = (other.get("design") or {}).get("factors") or {}
    for f in searched_factors(spec):
        level = row.get(f)
        if _missing(level) or factor_def(f).is_identity(float(level)):
            continue  # no pool: the factor's options did not touch the training set
        if f not in factors or _factor(f, factors[f], arch, seed) != _factor(
            f, factor_spec(spec.search.space[f]), arch, seed
        ):
            return f"other {f} options"
    return None
