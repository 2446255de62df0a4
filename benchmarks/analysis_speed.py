"""Speed of ``robust-ray analyze`` on a synthetic sweep of 100,000 trials x 50 test conditions
(5,000,000 metric rows), written through the real Parquet contract with a suites.json: the
clean test set, a level suite (9 levels) and a corruptions suite (8 corruptions x 5
severities, so five conditions share each level).

Prints the wall time of the whole analysis (load + every statistic + plots + report) and
its ratio to the I/O floor measured in the same run: reading the same two Parquet files
with pandas. Run: ``PYTHONPATH=$PWD python benchmarks/analysis_speed.py [--trials N]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from robust_ray.analysis.report import analyze
from robust_ray.results import metrics_schema, write_table


def synthetic(root: Path, trials: int, design: str, seed: int = 0) -> None:
    """``trials`` trials of a 10 x 10 grid (or a one_factor design with 2 x 25 levels) over
    2 architectures and as many seeds as it takes; 1 clean condition + 9 levels of mnist-c +
    8 corruptions x 5 severities."""
    rng = np.random.default_rng(seed)
    if design == "grid":
        la, lb = np.repeat(np.arange(10.0), 10), np.tile(np.arange(10.0) * 0.05, 10)
        factors = {"gaussian_l2": list(np.arange(10.0)), "label_error": list(np.arange(10.0) * 0.05)}
    else:
        a, b = np.arange(1, 26) * 0.5, np.arange(1, 26) * 0.02
        la = np.r_[0.0, a, np.zeros(25)]
        lb = np.r_[0.0, np.zeros(25), b]
        factors = {"gaussian_l2": list(a), "label_error": list(b)}
    rows = len(la)
    reps = -(-trials // (rows * 2))
    idx = np.tile(np.arange(rows), 2 * reps)[:trials]
    arch = np.repeat(["lenet5", "alexnet8"], rows * reps)[:trials]
    n = len(idx)
    tid = np.char.add("t", np.arange(n).astype(str))
    g, ld = la[idx], lb[idx]
    skill = 0.95 - 0.4 * ld + 0.003 * g + rng.normal(0, 0.01, n)
    status = np.where(rng.random(n) < 0.002, "failed", "ok")
    corruptions = ["gaussian_noise", "shot_noise", "defocus_blur", "motion_blur", "snow", "fog", "contrast", "pixelate"]
    conds = {
        "mnist-test": [("clean", 0.0, None, {})],
        "mnist-c": [(f"{lv:g}", lv, "gaussian_l2", {}) for lv in np.arange(1.0, 10.0)],
        "corruptions": [
            (f"{c}/{s}", float(s), f"corruption:{c}", {"corruption": c, "severity": s})
            for c in corruptions
            for s in range(1, 6)
        ],
    }
    hardness = {c: 0.01 * i for i, c in enumerate(corruptions)}
    t = pd.DataFrame(
        {
            "trial_id": tid,
            "sweep": "bench",
            "arch": arch,
            "recipe": "standard",
            "seed": np.arange(n) // (rows * 2),
            "status": status,
            "gaussian_l2": g,
            "label_error": ld,
            "train_acc": np.clip(skill + 0.03, 0, 1),
            "val_acc": skill,
            "epochs": pd.array(np.full(n, 10), dtype="Int64"),
            "n_train": pd.array(np.full(n, 60000), dtype="Int64"),
            "wall_s": np.ones(n),
        }
    )
    blocks, k = [], 0
    for s, cs in conds.items():
        for name, lv, _, params in cs:
            harder = hardness.get(params.get("corruption"), 0.0)
            acc = np.clip(skill - harder - 0.02 * lv * (1 - 0.05 * g) + rng.normal(0, 0.005, n), 0, 1)
            blocks.append(
                pd.DataFrame(
                    {"trial_id": tid, "suite": s, "condition": name, "level": lv, "accuracy": acc, "n": np.int64(10000)}
                )
            )
            k += 1
    m = pd.concat(blocks, ignore_index=True)
    acc = m.groupby(["trial_id", "suite"], sort=False)["accuracy"].mean().unstack("suite")
    for s in conds:
        t[f"acc_{s}"] = acc[s].reindex(tid).to_numpy()
    t["error"] = pd.array([None] * n, dtype="string")
    m = m[m["trial_id"].isin(set(tid[status == "ok"]))]
    write_table(t, str(root / "trials.parquet"))
    write_table(m, str(root / "metrics.parquet"), metrics_schema(m))
    (root / "sweep.json").write_text(
        json.dumps(
            {
                "name": "bench",
                "architectures": ["lenet5", "alexnet8"],
                "design": {
                    "type": design,
                    "factors": {f: {"levels": lv, "baseline": None} for f, lv in factors.items()},
                },
                "suites": {s: {"type": s, "levels": sorted({c[1] for c in cs})} for s, cs in conds.items()},
            }
        )
    )
    (root / "suites.json").write_text(
        json.dumps(
            {
                s: {
                    "type": s,
                    "conditions": [
                        {"name": name, "level": lv, "perturbation": p, "plevel": lv, "options": {}, "params": params}
                        for name, lv, p, params in cs
                    ],
                }
                for s, cs in conds.items()
            }
        )
    )
    assert k == 50, k


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, default=100_000)
    ap.add_argument("--design", choices=["grid", "one_factor", "both"], default="both")
    args = ap.parse_args()
    for design in ["grid", "one_factor"] if args.design == "both" else [args.design]:
        tmp = Path(tempfile.mkdtemp(prefix="rr-bench-"))
        try:
            t0 = time.perf_counter()
            synthetic(tmp, args.trials, design)
            made = time.perf_counter() - t0
            t0 = time.perf_counter()
            pd.read_parquet(tmp / "trials.parquet")
            rows = len(pd.read_parquet(tmp / "metrics.parquet"))
            floor = time.perf_counter() - t0
            t0 = time.perf_counter()
            out = analyze(tmp, tmp / "numbers", plots=False)
            numbers = time.perf_counter() - t0
            t0 = time.perf_counter()
            out = analyze(tmp)
            total = time.perf_counter() - t0
            plots, tables = len(list((out / "plots").glob("*.png"))), len(list((out / "tables").glob("*.csv")))
            print(
                f"{design}: {args.trials:,} trials x 50 test conditions ({rows:,} metric rows; data built in {made:.1f}s)"
            )
            print(f"  baseline, reading the two Parquet files with pandas: {floor:.2f}s")
            print(
                f"  analyze --no-plots (load + every statistic + {tables} tables + report): {numbers:.2f}s  -> {numbers / floor:.1f}x the read"
            )
            print(f"  analyze (the same + {plots} plots): {total:.2f}s  -> {total / floor:.1f}x the read")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
