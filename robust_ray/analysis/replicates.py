"""Seeds as replicates: each condition (architecture x training level x suite) as the mean,
sd and number of seeds behind it, with its 95 % interval.

With several seeds the interval is the t interval of the mean over them (the spread of
training); with one, Wilson's interval on the test images behind that accuracy (the spread
of testing alone; a suite's images under several perturbations are counted once per
condition, which makes it narrower than an honest one).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .stats import t_band, wilson

COLUMNS = ["arch", "suite", "level", "mean", "sd", "n_seeds", "ci_low", "ci_high", "interval"]


def level_table(
    ok: pd.DataFrame, factor: str, suites: list[str], archs: list[str], n_images: pd.DataFrame | None = None
) -> pd.DataFrame:
    """One row per architecture x suite x level of ``factor`` over the ok trials ``ok``
    (index: ``tidx``); ``n_images``: test images per trial (index tidx) and suite."""
    rows = []
    for s in suites:
        col = f"acc_{s}"
        if col not in ok:
            continue
        frame = ok[["arch", factor, col]].rename(columns={factor: "level", col: "acc"}).dropna(subset=["acc"])
        if n_images is not None and s in getattr(n_images, "columns", []):
            frame["nimg"] = n_images[s].reindex(frame.index).to_numpy(float)
        else:
            frame["nimg"] = np.nan
        g = (
            frame.groupby(["arch", "level"], observed=True, sort=True)
            .agg(mean=("acc", "mean"), sd=("acc", "std"), n_seeds=("acc", "size"), nimg=("nimg", "sum"))
            .reset_index()
        )
        g["suite"] = s
        lo, hi = t_band(g["mean"], g["sd"], g["n_seeds"])
        wl, wh = wilson(g["mean"], np.where(g["nimg"] > 0, g["nimg"], np.nan))
        one = g["n_seeds"].to_numpy() == 1
        g["ci_low"], g["ci_high"] = np.where(one, wl, lo), np.where(one, wh, hi)
        g["interval"] = np.where(one, np.where(np.isfinite(wl), "Wilson (test images)", "none"), "t over seeds")
        rows.append(g)
    if not rows:
        return pd.DataFrame(columns=COLUMNS)
    out = pd.concat(rows, ignore_index=True)
    order = {a: i for i, a in enumerate(archs)}
    out["_a"] = out["arch"].map(order)
    out["_s"] = out["suite"].map({s: i for i, s in enumerate(suites)})
    return out.sort_values(["_a", "_s", "level"]).drop(columns=["_a", "_s", "nimg"])[COLUMNS].reset_index(drop=True)
