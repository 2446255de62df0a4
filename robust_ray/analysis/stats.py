"""The statistics of 000 §2.4 and §3, computed with scipy and statsmodels.

- Spearman rank correlation r and its two-sided p (000 eq. 5; ``scipy.stats.spearmanr``),
  Pearson where asked (``scipy.stats.pearsonr``);
- mean and variance of accuracy per group (000 Tables 2-5);
- segments split at the peak of a chosen metric or at given breakpoints (000 Table 3);
- the multiple correlation R = corr(y, ŷ) = sqrt(R²) of an OLS regression of accuracy on
  several factors, with the F-test p (000 eq. 6, Tables 6-7; ``statsmodels.api.OLS``,
  which matches R's ``lm`` the paper used);
- the correlation-strength band of every r and R (000 §2.4).

Undefined statistics (a constant column, fewer than 3 points, no residual degrees of
freedom) come back as NaN with a ``note`` saying why; they never raise.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats

MIN_POINTS = 3
BANDS = ((0.95, "significant"), (0.8, "high"), (0.5, "moderate"), (0.3, "low"))


def band(r: float) -> str:
    """Correlation strength of 000 §2.4: |r| > 0.95 significant; 0.8 <= |r| < 0.95 high;
    0.5 <= |r| < 0.8 moderate; 0.3 <= |r| < 0.5 low; below 0.3 weak or none.

    The paper leaves |r| = 0.95 itself unassigned; it is counted as high here.
    """
    if r is None or not np.isfinite(r):
        return "undefined"
    a = abs(float(r))
    if a > 0.95:
        return "significant"
    for lower, name in BANDS[1:]:
        if a >= lower:
            return name
    return "weak or none"


@dataclass(frozen=True)
class Corr:
    r: float
    p: float
    n: int
    note: str = ""


def _constant(v: np.ndarray) -> bool:
    return bool(np.all(v == v[0]))


def correlation(x, y, method: str = "spearman") -> Corr:
    """Correlation of ``y`` with ``x`` over the pairs where both are finite.

    Spearman (000 eq. 5) via ``scipy.stats.spearmanr``, Pearson via ``scipy.stats.pearsonr``;
    two-sided p. Fewer than 3 pairs or a constant variable: r and p are NaN and ``note``
    says why (r is undefined there, not 0).
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    n = int(len(x))
    if n < MIN_POINTS:
        return Corr(math.nan, math.nan, n, f"fewer than {MIN_POINTS} points")
    if _constant(x) or _constant(y):
        which = "level" if _constant(x) else "accuracy"
        return Corr(math.nan, math.nan, n, f"constant {which}: r undefined")
    fn = {"spearman": stats.spearmanr, "pearson": stats.pearsonr}[method]
    res = fn(x, y)
    return Corr(float(res.statistic), float(res.pvalue), n)


def describe(y, ddof: int = 1) -> tuple[float, float, int]:
    """Mean and variance (``ddof``: 1 sample, 0 population) of the finite values of ``y``."""
    y = np.asarray(y, float)
    y = y[np.isfinite(y)]
    n = len(y)
    mean = float(np.mean(y)) if n else math.nan
    var = float(np.var(y, ddof=ddof)) if n > ddof else math.nan
    return mean, var, n


ROMAN = ["I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X"]


def peak_level(levels, values) -> float:
    """The level at which the mean of ``values`` over repeats (seeds) is highest; the
    lowest such level on ties (000 §3.2 splits at the peak of MNIST-A accuracy)."""
    s = pd.Series(np.asarray(values, float)).groupby(np.asarray(levels, float)).mean().dropna()
    if s.empty:
        return math.nan
    return float(s.index[np.argmax(s.to_numpy())])


def segment_of(levels, breakpoints: list[float]) -> np.ndarray:
    """Segment index of each level: segment k holds b[k-1] < level <= b[k] (000 Table 3:
    Segment I [0.0, 8.0] ends at the peak, inclusive; Segment II starts after it)."""
    return np.searchsorted(np.asarray(sorted(breakpoints), float), np.asarray(levels, float), side="left")


@dataclass(frozen=True)
class Multiple:
    R: float
    p: float  # F-test p of the regression
    r2: float
    adj_r2: float
    F: float
    n: int
    coefs: pd.DataFrame  # index: const + factors; columns coef, se, t, p
    note: str = ""


def multiple_correlation(y, X: pd.DataFrame) -> Multiple:
    """Multiple correlation of ``y`` with the columns of ``X`` (000 eq. 6).

    OLS of y on an intercept and the factors (``statsmodels.api.OLS``, as R's ``lm``):
    R = sqrt(R²) (= corr(y, ŷ) with an intercept), its F-test p (``f_pvalue``), R²,
    adjusted R², and per-factor coefficient, standard error, t and p. Rows with a NaN are
    dropped. Constant factors are dropped (and named in ``note``); no residual degrees of
    freedom or constant y make every statistic NaN with a note.
    """
    y = np.asarray(y, float)
    X = X.astype(float)
    keep = np.isfinite(y) & np.isfinite(X.to_numpy()).all(axis=1)
    y, X = y[keep], X[keep]
    n = int(len(y))
    empty = pd.DataFrame(columns=["coef", "se", "t", "p"], dtype=float)
    notes = []
    const = [c for c in X.columns if n and _constant(X[c].to_numpy())]
    if const:
        notes.append(f"constant factor(s) dropped: {', '.join(const)}")
        X = X.drop(columns=const)
    k = X.shape[1]
    why = None
    if k == 0:
        why = "no varying factor"
    elif n < k + 2:
        why = f"n={n} leaves no residual degrees of freedom for {k} factor(s)"
    elif _constant(y):
        why = "constant accuracy: R undefined"
    if why:
        return Multiple(*(math.nan,) * 5, n, empty, "; ".join(notes + [why]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        fit = sm.OLS(y, sm.add_constant(X, has_constant="add")).fit()
    r2 = float(fit.rsquared)
    coefs = pd.DataFrame({"coef": fit.params, "se": fit.bse, "t": fit.tvalues, "p": fit.pvalues})
    return Multiple(
        math.sqrt(max(r2, 0.0)), float(fit.f_pvalue), r2, float(fit.rsquared_adj), float(fit.fvalue), n, coefs, "; ".join(notes)
    )
