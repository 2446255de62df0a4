"""Synthetic results folders for the analysis tests, written through the real Parquet
contract (robust_ray.results.trial_rows / write_results) plus sweep.json and suites.json,
no Ray. Suites of a registered type get their real conditions (robust_ray.suites), so the
condition names and parameters are the ones a sweep writes."""

from __future__ import annotations

import dataclasses
import inspect
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as sst

from robust_ray.designs import grid, one_factor
from robust_ray.results import trial_rows, write_results
from robust_ray.storage import Storage
from robust_ray.suites import SUITES

MNIST_SHAPE = (1, 28, 28)


def suite_conditions(key: str, suite, shape: tuple[int, int, int] = MNIST_SHAPE) -> tuple[str, list[dict], dict]:
    """(type, conditions as suites.json holds them, spec) of one synthetic suite: ``suite`` is
    a list of levels (a registered suite called ``key``, else ``key`` as a perturbation at
    those levels) or ``{"type", "levels", "n", "seed"}``."""
    spec = dict(suite) if isinstance(suite, dict) else {"levels": list(suite)}
    stype = spec.get("type") or key
    levels = spec.get("levels")
    if stype in SUITES:
        sdef = SUITES.get(stype)
        conds = [dataclasses.asdict(c) for c in sdef.conditions(list(levels or sdef.default_levels), shape)]
    else:
        conds = [
            {
                "name": f"{lv:g}",
                "level": float(lv),
                "perturbation": stype,
                "plevel": float(lv),
                "options": {},
                "params": {},
            }
            for lv in levels
        ]
    return stype, conds, {"type": spec.get("type"), "levels": levels, "n": spec.get("n"), "seed": spec.get("seed", 0)}


def l25(factors: list[str], levels: dict[str, list[float]]) -> tuple[list[dict], np.ndarray]:
    """The L25(5^6) orthogonal array from GF(5): columns i, j, i+j, i+2j, i+3j, i+4j (mod 5).
    The first len(factors) columns carry the factors; the rest are empty. Returns the design
    rows and the full 25 x 6 array of level indices."""
    arr = np.array(
        [[i, j, (i + j) % 5, (i + 2 * j) % 5, (i + 3 * j) % 5, (i + 4 * j) % 5] for i in range(5) for j in range(5)]
    )
    rows = [{f: levels[f][arr[r, c]] for c, f in enumerate(factors)} for r in range(25)]
    return rows, arr


def make_sweep(
    root: Path,
    name: str,
    factors: dict[str, tuple],
    acc: Callable[[str, int, dict, str, float], float],
    design: str = "one_factor",
    rows: list[dict] | None = None,
    archs: tuple[str, ...] = ("lenet5",),
    seeds: tuple[int, ...] = (0,),
    suites: dict[str, list[float] | dict] | None = None,
    failed: Callable[[str, int, dict], bool] = lambda a, s, lv: False,
    n_images: int = 100,
    spec: bool = True,
    suites_json: bool = True,
    recipes: tuple[str, ...] = ("standard",),
    shape: tuple[int, int, int] = MNIST_SHAPE,
    as_trained: Callable[[dict], dict] | None = None,
) -> Path:
    """Write ``root`` as ``robust-ray run`` would. ``factors``: name -> (levels, baseline) or
    (levels, baseline, options). ``acc(arch, seed, levels, suite, level[, condition])``
    gives each accuracy (levels: factor -> value, a baseline of None read as 0.0; condition:
    the suites.json entry, passed when ``acc`` takes six arguments; None for the training set).
    ``recipes`` are crossed like architectures (an ``acc`` with a ``recipe`` keyword gets it);
    ``shape`` is the image shape the suites' conditions are made for; ``as_trained(levels)``
    gives the levels measured on the composed set (factors.compose's ``as_trained``)."""
    suites = suites or {"mnist-test": [0.0], "mnist-c": [1.0, 2.0, 3.0]}
    defs = {k: suite_conditions(k, v, shape) for k, v in suites.items()}
    params = inspect.signature(acc).parameters
    with_condition = len([q for q in params.values() if q.kind is q.POSITIONAL_OR_KEYWORD and q.name != "recipe"]) >= 6
    current = ["standard"]  # the recipe of the trial being written
    if "recipe" in params:
        acc_of = acc
        acc = lambda *a: acc_of(*a, recipe=current[0])  # noqa: E731
    if rows is None:
        fn = {"one_factor": one_factor, "grid": grid}[design]
        rows = fn({f: (v[0], v[1]) for f, v in factors.items()}, [])
    plans, outcomes = [], {}
    combos = [(row, arch, recipe, seed) for row in rows for arch in archs for recipe in recipes for seed in seeds]
    for row, arch, recipe, seed in combos:
        current[0] = recipe
        tid = f"t{len(plans):04d}"
        plans.append({"trial_id": tid, "arch": arch, "seed": seed, "levels": dict(row), "recipe": recipe})
        levels = {f: (0.0 if v is None else float(v)) for f, v in row.items()}
        if failed(arch, seed, levels):
            outcomes[tid] = {"status": "failed", "error": "synthetic failure"}
            continue
        metrics = []
        for s, (_, conds, sspec) in defs.items():
            for c in conds:
                args = (arch, seed, levels, s, c["level"]) + ((c,) if with_condition else ())
                metrics.append((s, c["name"], c["level"], acc(*args), sspec["n"] or n_images))
        summary = {f"acc_{s}": float(np.mean([m[3] for m in metrics if m[0] == s])) for s in suites}
        outcomes[tid] = {
            "status": "ok",
            "train_acc": acc(arch, seed, levels, "train", 0.0, *((None,) if with_condition else ())),
            "val_acc": 0.9,
            "epochs": 5,
            "n_train": 1000,
            "wall_s": 1.0,
            "achieved_json": json.dumps(
                {f: 0.0 for f, v in row.items() if v is None}
                | ({"as_trained": as_trained(levels)} if as_trained else {})
            ),
            "metrics_json": json.dumps(metrics),
            **summary,
        }
    trials, metrics = trial_rows(name, plans, outcomes)
    write_results(Storage(str(root)), trials, metrics)
    if spec:
        (root / "sweep.json").write_text(
            json.dumps(
                {
                    "name": name,
                    "architectures": list(archs),
                    "seeds": list(seeds),
                    "design": {
                        "type": design,
                        "factors": {
                            f: {"levels": v[0], "baseline": v[1], **(v[2] if len(v) > 2 else {})}
                            for f, v in factors.items()
                        },
                    },
                    "suites": {s: sspec for s, (_, _, sspec) in defs.items()},
                }
            )
        )
    if suites_json:
        (root / "suites.json").write_text(
            json.dumps({s: {"type": t, "conditions": c} for s, (t, c, _) in defs.items()})
        )
    return root


def stat(df: pd.DataFrame, **kw) -> pd.Series:
    """The one row of a statistics table matching every ``column=value`` given."""
    m = df
    for k, v in kw.items():
        m = m[m[k] == v]
    assert len(m) == 1, f"{kw}: {len(m)} rows"
    return m.iloc[0]


def scipy_exact_p(x, y, method):
    """scipy's exact permutation test of r, vectorised (the statistic of every pairing at once)."""
    # Spearman's r is Pearson's r of the ranks, and the ranks of a reordered y are the
    # reordered ranks of y (ties included): rank once, not once per pairing (10! at n = 10)
    rank = sst.rankdata if method == "spearman" else (lambda v: np.asarray(v, float))
    xs, ys = rank(x), rank(y)

    def stat(a, axis=-1):
        return sst.pearsonr(np.broadcast_to(xs, a.shape), a, axis=axis).statistic

    return sst.permutation_test((ys,), stat, permutation_type="pairings", n_resamples=np.inf, vectorized=True).pvalue
