"""Grouped sums over a dense integer key, for metric tables of millions of rows.

Per-model statistics group metrics.parquet rows by trial (``tidx``, the trial's row in the
trials frame) and suite. ``numpy.bincount`` over one combined integer key does that in one
pass, about ten times faster than a pandas groupby on two keys at 5,000,000 rows; the
results are checked against pandas groupby in the tests.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def suite_codes(metrics: pd.DataFrame, suites: list[str], column: str = "suite") -> np.ndarray:
    """Position of each row's ``column`` value (its suite) in ``suites`` (-1 if not there)."""
    col = metrics[column]
    if isinstance(col.dtype, pd.CategoricalDtype):
        return col.cat.set_categories(suites).cat.codes.to_numpy().astype(np.int64)
    return pd.Categorical(col.astype(str), categories=suites).codes.astype(np.int64)


def by_trial_suite(
    metrics: pd.DataFrame, suites: list[str], values: np.ndarray, column: str = "suite"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(trial indices present, count[trial, key], sum of ``values``[trial, key]) where the
    key is the row's ``column`` (its suite, or its corruption) among ``suites``."""
    code = suite_codes(metrics, suites, column)
    keep = code >= 0
    tidx = metrics["tidx"].to_numpy(np.int64)[keep]
    size = (int(tidx.max()) + 1 if len(tidx) else 0) * len(suites)
    key = tidx * len(suites) + code[keep]
    count = np.bincount(key, minlength=size).reshape(-1, len(suites))
    total = np.bincount(key, weights=np.asarray(values, float)[keep], minlength=size).reshape(-1, len(suites))
    present = np.flatnonzero(count.sum(axis=1) > 0)
    return present, count[present], total[present]


def by_trial(metrics: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(trial indices present, each row's position among them, rows per trial)."""
    tidx = metrics["tidx"].to_numpy(np.int64)
    count = np.bincount(tidx)
    present = np.flatnonzero(count > 0)
    position = np.cumsum(count > 0) - 1  # trial index -> its position among those present
    return present, position[tidx], count[present]
