"""The search space: the spec's ranges as Optuna distributions, and a proposed point as the
trial ``run`` would have planned for it.

A point names a level for every searched factor and a value for every searched training
setting (``training.lr``) and recipe option (``training.recipe_options.eps``). Its trial is
planned by :func:`robust_ray.plan.make_plan` on a one-row ``list`` design of the searched
factors, so pools get the same content keys as in a grid sweep (and share its disk cache).
"""

from __future__ import annotations

import dataclasses

from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from ..factors import factor_def
from ..plan import Plan, TrialPlan, make_plan, trial_key
from ..spec import DesignSpec, SearchRange, SweepSpec, TrainingSpec
from .dims import (  # noqa: F401  (TRAINING, OPTIONS, is_option, option_key: re-exported for front.py, run.py)
    OPTIONS,
    TRAINING,
    factor_spec,
    is_integer,
    is_option,
    is_training,
    option_key,
    recipe_of,
    searched_factors,
    split,
)


def distribution(name: str, r: SearchRange, recipe: str = "standard") -> BaseDistribution:
    """Optuna's distribution for one searched dimension (ranges are checked already)."""
    whole = is_integer(name, recipe)
    if r.choices is not None:
        return CategoricalDistribution([int(c) if whole else float(c) for c in r.choices])
    if whole:
        return IntDistribution(int(r.low), int(r.high), log=r.log, step=int(r.step or 1))
    return FloatDistribution(r.low, r.high, log=r.log, step=r.step)


def distributions(spec: SweepSpec) -> dict[str, BaseDistribution]:
    return {name: distribution(name, r, recipe_of(spec)) for name, r in spec.search.space.items()}


def planning_spec(spec: SweepSpec, row: dict[str, float]) -> SweepSpec:
    """``spec`` with a one-row list design over the searched factors (options as given).
    Built without validation: a search of training settings alone has no factor, which a
    spec's design may not have, and every part was checked already."""
    factors = {f: factor_spec(spec.search.space[f]) for f in searched_factors(spec)}
    return spec.model_copy(update={"design": DesignSpec.model_construct(type="list", factors=factors, rows=[row])})


def point_plan(spec: SweepSpec, params: dict, trial_id: str) -> tuple[TrialPlan, Plan]:
    """The trial of one proposed point and the plan holding its datasets' keys."""
    row = {f: float(params[f]) for f in searched_factors(spec)}
    plan = make_plan(planning_spec(spec, row))
    (t,) = plan.trials  # one architecture, one seed, one recipe (search/checks.py)
    return dataclasses.replace(t, trial_id=trial_id, recipe_options=recipe_options_for(spec, params)), plan


def point_trial_key(spec: SweepSpec, params: dict) -> str:
    """The ``trial_key`` (:func:`robust_ray.plan.trial_key`) of the trial a point trains: equal
    to a grid trial's key exactly when that trial trained the same model (issue 17)."""
    row = {f: float(params[f]) for f in searched_factors(spec)}
    pspec = planning_spec(spec, row).model_copy(update={"training": training_for(spec, params)})
    (t,) = make_plan(pspec).trials
    return trial_key(pspec, t.arch, t.seed, t.levels, t.recipe, recipe_options_for(spec, params), t.pools)


def recipe_options_for(spec: SweepSpec, params: dict) -> dict:
    """The recipe's options with the point's searched ones: the trial passes them to the
    recipe, over the spec's ``training.recipe_options``."""
    recipe, options = spec.recipe_list()[0]
    over = {}
    for n, v in params.items():
        kind, option = split(n)
        if kind == "option":  # Tune may hand numpy scalars back; the options model wants int or float
            over[option] = int(v) if is_integer(n, recipe) else float(v)
    return {**options, **over}


def training_for(spec: SweepSpec, params: dict) -> TrainingSpec:
    """The sweep's training settings with the point's searched ones (recipe options go
    through :func:`recipe_options_for`)."""
    over = {}
    for n, v in params.items():
        kind, setting = split(n)
        if kind == "training":
            over[setting] = v
    return TrainingSpec.model_validate({**spec.training.model_dump(), **over}) if over else spec.training


def shared_datasets(spec: SweepSpec) -> Plan:
    """The datasets every point uses, whatever its levels: the suites and the reference
    models FGSM-like pools attack. Built before any trial, as ``run`` builds its plan."""
    row = {}
    for f in searched_factors(spec):
        dist = distribution(f, spec.search.space[f])
        values = dist.choices if isinstance(dist, CategoricalDistribution) else (dist.high, dist.low)
        identity = factor_def(f).identity
        row[f] = float(next((v for v in values if v != identity), values[0]))  # a level with a pool
    plan = make_plan(planning_spec(spec, row))
    keep = {d: k for d, k in plan.datasets.items() if k.kind in ("model", "suite")}
    return Plan([], keep, {d: plan.where[d] for d in keep})
