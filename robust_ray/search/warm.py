"""Warm start: trials already trained (a grid from ``run``, an earlier search) become
finished trials of the study, so the sampler starts from what is known.

A folder's trials count only where they are points of this search: the same dataset, the
same objective/constraint suites (same levels, sizes and options), status ok, trained as
this search trains (architecture, seed, recipe and its options, training settings, searched
factors' options: :mod:`.same`), every searched factor at a level the search space holds (a
factor the folder did not vary is at its identity level) and every other factor untouched.
A folder that cannot be compared at all (no sweep.json, another dataset, other suites) is an
error; other trials are skipped and counted by reason (the run logs them).
"""

from __future__ import annotations

import io
import json
import math
from collections import Counter
from dataclasses import dataclass

import optuna
import pandas as pd
from optuna.distributions import BaseDistribution, CategoricalDistribution, IntDistribution
from optuna.trial import FrozenTrial

from ..errors import SpecError
from ..factors import factor_def
from ..spec import SweepSpec
from ..storage import Storage
from .dims import split
from .same import difference, their_options, their_training, training_value
from .space import point_trial_key
from .study import CONSTRAINTS_ATTR, constraint_values


@dataclass
class WarmStart:
    trials: list[FrozenTrial]
    skipped: dict[str, Counter]  # folder -> why -> trials left out ("not ok", "other seed", ...)

    def summary(self) -> str:
        """The trials left out, by reason: '3 other seed, 2 outside the search space'."""
        total = sum((c for c in self.skipped.values()), Counter())
        return ", ".join(f"{n} {why}" for why, n in total.most_common())


def _read(folder: str, path: str, file) -> tuple[pd.DataFrame, dict]:
    where = Storage(folder)
    if not where.exists("trials.parquet"):
        raise SpecError(file, path, f"{folder}: no trials.parquet (not a results folder)")
    if not where.exists("sweep.json"):
        raise SpecError(file, path, f"{folder}: no sweep.json, so its suites cannot be compared with this spec's")
    with where.fs.open_input_file(where.path("trials.parquet")) as f:
        trials = pd.read_parquet(io.BytesIO(f.read()))
    return trials, json.loads(where.read_text("sweep.json"))


def _suite_metrics(spec: SweepSpec) -> list[str]:
    s = spec.search
    return [m[4:] for m in [o.metric for o in s.objectives] + [c.metric for c in s.constraints] if m.startswith("acc_")]


def _comparable(spec: SweepSpec, other: dict, folder: str, path: str, file) -> None:
    if other.get("dataset", {}).get("name") != spec.dataset.name:
        raise SpecError(
            file, path, f"{folder} was trained on {other.get('dataset', {}).get('name')!r}, not {spec.dataset.name!r}"
        )
    for key in _suite_metrics(spec):
        mine = spec.suites[key].model_dump(mode="json")
        theirs = (other.get("suites") or {}).get(key)
        if theirs != mine:
            raise SpecError(
                file, path, f"{folder}: suite {key!r} is {theirs} there, {mine} here; its accuracies are not comparable"
            )


def _in_space(dist: BaseDistribution, v: float) -> float | int | None:
    """``v`` as a value of ``dist`` (snapped onto its step), or None when outside it."""
    if isinstance(dist, CategoricalDistribution):
        return next((c for c in dist.choices if math.isclose(c, v, rel_tol=0, abs_tol=1e-9)), None)
    if not (dist.low - 1e-9 <= v <= dist.high + 1e-9):
        return None
    if dist.step is not None:
        k = (v - dist.low) / dist.step
        if abs(k - round(k)) > 1e-6:
            return None
        v = dist.low + round(k) * dist.step
    v = min(max(v, dist.low), dist.high)
    return int(round(v)) if isinstance(dist, IntDistribution) else float(v)


def _params(row: pd.Series, training: dict, options: dict, dists: dict[str, BaseDistribution]) -> dict | None:
    """The row's point in the search space, or None when it is not one of its points.
    ``options``: the recipe options it trained with (:func:`~.same.their_options`)."""
    params = {}
    for name, dist in dists.items():
        kind, own = split(name)
        if kind == "option":
            v = options.get(own)
        elif kind == "training":
            v = training_value(row, training, own)
        else:
            v = row.get(name, float("nan"))
            if v is None or (isinstance(v, float) and math.isnan(v)):
                v = factor_def(name).identity
        if v is None:
            return None
        v = _in_space(dist, float(v))
        if v is None:
            return None
        params[name] = v
    return params


def _other_factor(row: pd.Series, other: dict, dists: dict[str, BaseDistribution]) -> bool:
    """Whether the row was trained with a factor this search leaves untouched: a different
    training set."""
    varied = ((other.get("design") or {}).get("factors") or {}).keys()
    return any(
        not (pd.isna(row[f]) or factor_def(f).is_identity(float(row[f])))
        for f in varied
        if f not in dists and f in row.index
    )


def _point(spec: SweepSpec, row: pd.Series, other: dict, training: dict, dists) -> tuple[dict | None, str | None]:
    """The row's point, or None and why it is not one of this search. A row with a
    ``trial_key`` is one exactly when the point's key is the same (issue 17: same model);
    a folder written before trial keys is compared setting by setting (:mod:`.same`)."""
    if row.get("status") != "ok":
        return None, "not ok"
    key = row.get("trial_key")
    if key is not None and not pd.isna(key):
        return _keyed_point(spec, row, other, training, dists, str(key))
    if (why := difference(spec, row, other, training)) is not None:
        return None, why
    if _other_factor(row, other, dists):
        return None, "another factor varied"
    options = their_options(row, other, spec.recipe_list()[0][0])  # not None: difference() passed
    if (params := _params(row, training, options, dists)) is None:
        return None, "outside the search space"
    if any(row.get(o.metric) is None or pd.isna(row.get(o.metric)) for o in spec.search.objectives):
        return None, "no objective value"
    return params, None


def _keyed_point(spec: SweepSpec, row: pd.Series, other: dict, training: dict, dists, key: str):
    options = their_options(row, other, spec.recipe_list()[0][0]) or {}
    if (params := _params(row, training, options, dists)) is None:
        return None, "outside the search space"
    if point_trial_key(spec, params) != key:
        return None, "trained otherwise (another trial_key)"
    if any(row.get(o.metric) is None or pd.isna(row.get(o.metric)) for o in spec.search.objectives):
        return None, "no objective value"
    return params, None


def warm_start(spec: SweepSpec, dists: dict[str, BaseDistribution], file: str | None = None) -> WarmStart:
    """Every usable trial of the spec's ``search.warm_start`` folders, as finished Optuna
    trials (objective values, constraint values, and where they came from)."""
    out, skipped = [], {}
    objectives = [o.metric for o in spec.search.objectives]
    for i, folder in enumerate(spec.search.warm_start):
        path = f"search.warm_start[{i}]"
        trials, other = _read(folder, path, file)
        _comparable(spec, other, folder, path, file)
        skipped[folder] = Counter()
        training = their_training(other)
        for _, row in trials.iterrows():
            params, why = _point(spec, row, other, training, dists)
            if why is not None:
                skipped[folder][why] += 1
                continue
            values = [row[m] for m in objectives]
            out.append(
                optuna.trial.create_trial(
                    params=params,
                    distributions=dists,
                    values=[float(v) for v in values],
                    # the list format of study.store_constraints (what optuna-dashboard reads)
                    system_attrs={
                        CONSTRAINTS_ATTR: list(constraint_values(spec.search.constraints, row.to_dict()).values())
                    }
                    if spec.search.constraints
                    else None,
                    user_attrs={"warm_start": folder, "trial_id": str(row["trial_id"])},
                )
            )
    return WarmStart(out, skipped)
