"""A search's trial: a proposed point -> the trial ``run`` would have run for it (no Ray here:
:func:`robust_ray.runtime.search_trainable` runs :func:`run_point` in a Ray Tune trial).

Levels are not known before the search starts, so a trial's augment pools cannot all be
built in advance as ``run`` builds them. Each trial builds its own pools, on its own
resources (a trial never waits on a task that needs the CPUs trials hold), from the clean
data and the pre-built reference model, and keeps them in the disk cache under their content
key: a level proposed again (a stepped range, a resumed search, a grid's levels) is loaded,
not rebuilt. Suites and reference models are level-independent and built before the search
(:func:`robust_ray.search.space.shared_datasets`). The rest is :func:`~robust_ray.trial.execute_trial`,
shared with ``run``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch

from ..cache import cache_dir, load_or_build
from ..config import SweepSpec, TrainingSpec
from ..plan import Plan, TrialPlan
from ..trial import execute_trial
from .space import point_plan, training_for
from .study import NUMBER, trial_id


def _pool(plan: Plan, digest: str, base, fetch: Callable[[str], Any]):
    key = plan.datasets[digest]
    ref = key.p.get("reference")
    reference = fetch(ref) if ref else None
    arch = plan.datasets[ref].p["arch"] if ref else None
    cache = cache_dir()
    obj, _ = load_or_build(key, base, str(cache) if cache else None, reference, arch)
    return obj


def config_trial(config: dict, spec: SweepSpec) -> tuple[TrialPlan, Plan, TrainingSpec]:
    """A Tune config (the point's parameters and its Optuna trial number) as the trial to
    run: its levels, pools and recipe options (searched ones included), the plan holding
    its datasets' keys, and its training settings."""
    params = {k: v for k, v in config.items() if k != NUMBER}
    trial, plan = point_plan(spec, params, trial_id(config[NUMBER]))
    return trial, plan, training_for(spec, params)


def run_point(config: dict, spec: SweepSpec, fetch: Callable[[str], Any], report: Callable[[dict], None]) -> dict:
    """Build the point's pools (``fetch(key)``: the clean data, a reference model) and run its
    trial; returns the final metrics, as :func:`~robust_ray.trial.execute_trial`."""
    t0 = time.time()
    torch.set_num_threads(max(1, int(spec.resources.cpu)))  # pools are built here too (FGSM: gradients)
    trial, plan, settings = config_trial(config, spec)
    base = fetch("base")
    pools = {f: _pool(plan, d, base, fetch) for f, d in trial.pools.items()}
    return execute_trial(trial.to_dict(), spec, fetch, report, settings, pools, t0)
