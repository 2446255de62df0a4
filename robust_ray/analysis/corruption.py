"""Corruption-benchmark scores: per-corruption and aggregate accuracy, mCE (004) and the
corruption overlapping score (001).

Per-corruption accuracy (004 §4.2): P_c = (1/S) * sum_s P_{c,s}, the mean over the
corruption's severity levels; the aggregate P = the mean of P_c over the corruptions.

mCE (Hendrycks & Dietterich 2019, the benchmark 004 evaluates on): with errors
E = 1 - accuracy, CE_c = sum_s E_{c,s}(model) / sum_s E_{c,s}(baseline model) and
mCE = the mean of CE_c over the corruptions (a ratio; 1.0 = as good as the baseline).

Overlapping score (001, third abstract: Laugros, Caplier, Ospici 2021, "Using the
overlapping score to improve corruption benchmarks", arXiv:2105.12357, §2). With M a
model trained normally, M_c one trained with corruption c as augmentation, and the
robustness of a model to c its accuracy on c relative to its clean accuracy,
R(M, c) = A(M, c) / A(M, clean), two corruptions c1, c2 overlap by

    O(c1, c2) = max(0, 1/2 * [ (R(M_c2, c1) - R(M, c1)) / (R(M_c1, c1) - R(M, c1))
                             + (R(M_c1, c2) - R(M, c2)) / (R(M_c2, c2) - R(M, c2)) ])

i.e. how much of the robustness gain that training on c_i gives on c_i, training on the
other corruption also gives (0: independent, 1: training on either is as good as the
other). It is undefined (NaN) when training on a corruption does not raise the
robustness to it (a denominator <= 0).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .groups import by_trial_suite


def per_corruption(metrics: pd.DataFrame, suites: list[str], key: str = "suite") -> pd.DataFrame:
    """Per model (index ``tidx``): P_c for each corruption (columns) and ``aggregate`` (004
    §4.2). A row's corruption is its ``key`` column: ``corruption`` for the conditions of a
    ``corruptions`` suite (``"fog/3"`` -> fog), ``suite`` when each corruption is a suite of
    its own; P_c is the mean over the rows (severities) of that corruption.

    A model missing a corruption gets NaN there and no aggregate (the mean over a partial set
    of corruptions would not be comparable)."""
    trials, count, total = by_trial_suite(metrics, suites, metrics["accuracy"].to_numpy(float), key)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = pd.DataFrame(
            np.where(count > 0, total / count, np.nan), index=pd.Index(trials, name="tidx"), columns=suites
        )
    p["aggregate"] = p[suites].mean(axis=1, skipna=False)
    return p


def corruption_errors(metrics: pd.DataFrame, suites: list[str], key: str = "suite") -> pd.DataFrame:
    """sum_s E_{c,s} per model (index ``tidx``) and corruption (columns; see :func:`per_corruption`)."""
    trials, count, total = by_trial_suite(metrics, suites, 1.0 - metrics["accuracy"].to_numpy(float), key)
    return pd.DataFrame(np.where(count > 0, total, np.nan), index=pd.Index(trials, name="tidx"), columns=suites)


def mce(errors: pd.DataFrame, baseline: pd.Series) -> pd.DataFrame:
    """CE_c per suite and their mean ``mCE``, from :func:`corruption_errors` of the models
    and of the baseline model (a Series: suite -> sum_s E). A baseline with zero error on a
    corruption makes that CE undefined (NaN)."""
    base = baseline.reindex(errors.columns).astype(float)
    ce = errors.div(base.where(base > 0), axis=1)
    ce.columns = [f"CE_{c}" for c in ce.columns]
    ce["mCE"] = ce.mean(axis=1, skipna=False)
    return ce


def robustness(acc_corrupt: float, acc_clean: float) -> float:
    """R(M, c) = A(M, c) / A(M, clean) (001's relative robustness)."""
    return acc_corrupt / acc_clean if acc_clean > 0 else math.nan


def overlap_score(r_plain: dict[str, float], r_1: dict[str, float], r_2: dict[str, float], c1: str, c2: str) -> float:
    """O(c1, c2) from the robustness of M (``r_plain``), M_c1 (``r_1``) and M_c2 (``r_2``)
    to both corruptions (see the module doc for the formula and its source)."""
    gain_1 = r_1[c1] - r_plain[c1]
    gain_2 = r_2[c2] - r_plain[c2]
    if not (gain_1 > 0 and gain_2 > 0):
        return math.nan
    score = 0.5 * ((r_2[c1] - r_plain[c1]) / gain_1 + (r_1[c2] - r_plain[c2]) / gain_2)
    return float(max(0.0, score)) if np.isfinite(score) else math.nan
