"""Synthetic results folders for the analysis tests, written through the real Parquet
contract (robust_ray.results.trial_rows / write_results) plus a sweep.json, no Ray."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np

from robust_ray.designs import grid, one_factor
from robust_ray.results import trial_rows, write_results
from robust_ray.storage import Storage


def l25(factors: list[str], levels: dict[str, list[float]]) -> tuple[list[dict], np.ndarray]:
    """The L25(5^6) orthogonal array from GF(5): columns i, j, i+j, i+2j, i+3j, i+4j (mod 5).
    The first len(factors) columns carry the factors; the rest are empty. Returns the design
    rows and the full 25 x 6 array of level indices."""
    arr = np.array([[i, j, (i + j) % 5, (i + 2 * j) % 5, (i + 3 * j) % 5, (i + 4 * j) % 5] for i in range(5) for j in range(5)])
    rows = [{f: levels[f][arr[r, c]] for c, f in enumerate(factors)} for r in range(25)]
    return rows, arr


def make_sweep(
    root: Path,
    name: str,
    factors: dict[str, tuple[list[float], float | None]],
    acc: Callable[[str, int, dict, str, float], float],
    design: str = "one_factor",
    rows: list[dict] | None = None,
    archs: tuple[str, ...] = ("lenet5",),
    seeds: tuple[int, ...] = (0,),
    suites: dict[str, list[float]] | None = None,
    failed: Callable[[str, int, dict], bool] = lambda a, s, lv: False,
    n_images: int = 100,
    spec: bool = True,
) -> Path:
    """Write ``root`` as ``robust-ray run`` would. ``acc(arch, seed, levels, suite, level)``
    gives each accuracy (levels: factor -> value, a baseline of None read as 0.0)."""
    suites = suites or {"mnist-test": [0.0], "mnist-c": [1.0, 2.0, 3.0]}
    if rows is None:
        fn = {"one_factor": one_factor, "grid": grid}[design]
        rows = fn({f: (lv, b) for f, (lv, b) in factors.items()}, [])
    plans, outcomes = [], {}
    for row in rows:
        for arch in archs:
            for seed in seeds:
                tid = f"t{len(plans):04d}"
                plans.append({"trial_id": tid, "arch": arch, "seed": seed, "levels": dict(row)})
                levels = {f: (0.0 if v is None else float(v)) for f, v in row.items()}
                if failed(arch, seed, levels):
                    outcomes[tid] = {"status": "failed", "error": "synthetic failure"}
                    continue
                metrics = [(s, f"{lv:g}", lv, acc(arch, seed, levels, s, lv), n_images) for s, lvs in suites.items() for lv in lvs]
                summary = {f"acc_{s}": float(np.mean([m[3] for m in metrics if m[0] == s])) for s in suites}
                outcomes[tid] = {
                    "status": "ok", "train_acc": acc(arch, seed, levels, "train", 0.0), "val_acc": 0.9, "epochs": 5,
                    "n_train": 1000, "wall_s": 1.0, "achieved_json": json.dumps({f: 0.0 for f, v in row.items() if v is None}),
                    "metrics_json": json.dumps(metrics), **summary,
                }
    trials, metrics = trial_rows(name, plans, outcomes)
    write_results(Storage(str(root)), trials, metrics)
    if spec:
        (root / "sweep.json").write_text(json.dumps({
            "name": name, "architectures": list(archs), "seeds": list(seeds),
            "design": {"type": design, "factors": {f: {"levels": lv, "baseline": b} for f, (lv, b) in factors.items()}},
            "suites": {s: {"type": None, "levels": lv} for s, lv in suites.items()},
        }))
    return root
