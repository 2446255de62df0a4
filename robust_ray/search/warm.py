"""Warm start: trials already trained (a grid from ``run``, an earlier search) become
finished trials of the study, so the sampler starts from what is known.

A folder's trials count only where they are points of this search: the same dataset, the
same objective/constraint suites (same levels, sizes and options), the spec's architecture,
status ok, every searched factor at a level the search space holds (a factor the folder did
not vary is at its identity level) and every other factor untouched. A folder that cannot be
compared at all (no sweep.json, another dataset, other suites) is an error; single trials
outside the space are skipped and counted.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass

import optuna
import pandas as pd
from optuna.distributions import BaseDistribution, CategoricalDistribution, IntDistribution
from optuna.trial import FrozenTrial

from ..config import SweepSpec
from ..errors import SpecError
from ..factors import factor_def
from ..storage import Storage
from .space import TRAINING, is_training
from .study import constraint_values


@dataclass
class WarmStart:
    trials: list[FrozenTrial]
    skipped: dict[str, int]  # folder -> trials left out (failed, other arch, outside the space)


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
        raise SpecError(file, path, f"{folder} was trained on {other.get('dataset', {}).get('name')!r}, not {spec.dataset.name!r}")
    for key in _suite_metrics(spec):
        mine = spec.suites[key].model_dump(mode="json")
        theirs = (other.get("suites") or {}).get(key)
        if theirs != mine:
            raise SpecError(file, path, f"{folder}: suite {key!r} is {theirs} there, {mine} here; its accuracies are not comparable")


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


def _params(spec: SweepSpec, row: pd.Series, other: dict, dists: dict[str, BaseDistribution]) -> dict | None:
    """The row's point in the search space, or None when it is not one of its points."""
    params = {}
    for name, dist in dists.items():
        if is_training(name):
            v = (other.get("training") or {}).get(name[len(TRAINING) :])
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
    varied = ((other.get("design") or {}).get("factors") or {}).keys()
    for f in varied:
        if f in dists or f not in row.index:
            continue
        v = row[f]
        if not (pd.isna(v) or factor_def(f).is_identity(float(v))):
            return None  # trained with another factor too: a different training set
    return params


def warm_start(spec: SweepSpec, dists: dict[str, BaseDistribution], file: str | None = None) -> WarmStart:
    """Every usable trial of the spec's ``search.warm_start`` folders, as finished Optuna
    trials (objective values, constraint values, and where they came from)."""
    out, skipped = [], {}
    objectives = [o.metric for o in spec.search.objectives]
    for i, folder in enumerate(spec.search.warm_start):
        path = f"search.warm_start[{i}]"
        trials, other = _read(folder, path, file)
        _comparable(spec, other, folder, path, file)
        skipped[folder] = 0
        for _, row in trials.iterrows():
            params = None
            if row.get("status") == "ok" and row.get("arch") == spec.architectures[0]:
                params = _params(spec, row, other, dists)
            values = [row.get(m) for m in objectives]
            if params is None or any(v is None or pd.isna(v) for v in values):
                skipped[folder] += 1
                continue
            out.append(
                optuna.trial.create_trial(
                    params=params,
                    distributions=dists,
                    values=[float(v) for v in values],
                    constraints=constraint_values(spec.search.constraints, row.to_dict()) or None,
                    user_attrs={"warm_start": folder, "trial_id": str(row["trial_id"])},
                )
            )
    return WarmStart(out, skipped)
