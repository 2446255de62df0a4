"""The statistics of 000 §2.4 and §3, computed with scipy and statsmodels, with intervals.

- Spearman rank correlation r (000 eq. 5; ``scipy.stats.spearmanr``), Pearson where asked
  (``scipy.stats.pearsonr``); two-sided p exact for n <= 10 (every one of the n! pairings,
  ties kept as average ranks, as ``scipy.stats.permutation_test``), the t approximation
  above (:func:`correlation`); a 95 % interval from a bootstrap over replicates (seeds)
  where there are several, else Fisher's z (Bonett-Wright variance for Spearman);
- mean and variance of accuracy per group (000 Tables 2-5), the mean with its t interval;
  an accuracy with its Wilson interval on the n test images (:func:`wilson`);
- segments split at the peak of a chosen metric or at given breakpoints (000 Table 3);
- the multiple correlation R = corr(y, ŷ) = sqrt(R²) of an OLS regression of accuracy on
  several factors, with the F-test p (000 eq. 6, Tables 6-7; ``statsmodels.api.OLS``,
  which matches R's ``lm`` the paper used), statsmodels' coefficient intervals and a
  bootstrap interval for R over replicates;
- the correlation-strength band of every r and R (000 §2.4).

Undefined statistics (a constant column, fewer than 3 points, no residual degrees of
freedom) come back as NaN with a ``note`` saying why; they never raise.
"""

from __future__ import annotations

import itertools
import math
import warnings
from dataclasses import dataclass
from functools import cache, lru_cache

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats

MIN_POINTS = 3
EXACT_MAX_N = 10  # exact permutation p up to 10! = 3,628,800 pairings
BOOT_MAX_N = 5000  # bootstrap intervals up to this many points; Fisher's z (ample there) above
BOOT_B = 2000
LEVEL = 0.95
BANDS = ((0.95, "significant"), (0.8, "high"), (0.5, "moderate"), (0.3, "low"))
BOOT_TEXT = f"bootstrap over seeds ({BOOT_B} residual resamples within each design point, expanded percentile)"
STRENGTH = "strength (000 §2.4)"  # the column header: 000's band words, not a test


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
    ci_low: float = math.nan
    ci_high: float = math.nan
    p_method: str = ""
    ci_method: str = ""


def _constant(v: np.ndarray) -> bool:
    return bool(np.all(v == v[0]))


@cache
def _pairings(n: int) -> np.ndarray:
    """Every permutation of range(n), one per row (n <= EXACT_MAX_N)."""
    return np.array(list(itertools.permutations(range(n))), dtype=np.int8)


@lru_cache(maxsize=512)
def _null(xs: tuple, ys: tuple) -> np.ndarray:
    """Sorted sum(x_i y_pi(i)) over all pairings pi of centred x and y: it depends on the
    two multisets only, so one null serves every frame with the same ranks (Spearman
    without ties: one per n)."""
    x, y = np.asarray(xs), np.asarray(ys)
    perms = _pairings(len(x))
    out = np.empty(len(perms))
    for i in range(0, len(perms), 500_000):
        out[i : i + 500_000] = y[perms[i : i + 500_000]] @ x
    out.sort()
    return out


def permutation_p(x, y) -> float:
    """Two-sided exact p of the correlation of ``x`` and ``y`` over all n! pairings:
    2 min(P(T >= t), P(T <= t)), at most 1, as ``scipy.stats.permutation_test`` with
    ``permutation_type="pairings"`` (ties in the null count on both sides)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    xc, yc = x - x.mean(), y - y.mean()
    null = _null(tuple(np.round(np.sort(xc), 12)), tuple(np.round(np.sort(yc), 12)))
    obs = float(xc @ yc)
    tol = 1e-9 * float(np.linalg.norm(xc) * np.linalg.norm(yc))
    greater = (len(null) - np.searchsorted(null, obs - tol, side="left")) / len(null)
    less = np.searchsorted(null, obs + tol, side="right") / len(null)
    return float(min(1.0, 2 * min(greater, less)))


def fisher_interval(r: float, n: int, method: str) -> tuple[float, float]:
    """95 % interval of r on Fisher's z scale: se 1/sqrt(n-3) (Pearson), sqrt((1 + r²/2)/(n-3))
    for Spearman (Bonett & Wright 2000); NaN for n < 4 or |r| = 1 (z infinite)."""
    if n < 4 or not np.isfinite(r) or abs(r) >= 1:
        return math.nan, math.nan
    se = math.sqrt((1 + r * r / 2) / (n - 3)) if method == "spearman" else 1 / math.sqrt(n - 3)
    z, q = math.atanh(r), stats.norm.ppf(0.5 + LEVEL / 2)
    return math.tanh(z - q * se), math.tanh(z + q * se)


def _strata(groups: np.ndarray) -> list[np.ndarray]:
    _, code = np.unique(groups, return_inverse=True)
    return [np.flatnonzero(code == g) for g in range(code.max() + 1)]


def resample(y: np.ndarray, groups: np.ndarray, b: int = BOOT_B, seed: int = 0) -> np.ndarray:
    """``b`` bootstrap copies of ``y`` (rows): each replicate is its design point's mean plus
    a residual drawn with replacement from that point's residuals, rescaled by
    sqrt(m / (m - 1)) (m replicates) so the resampled spread is not (m - 1)/m of the observed
    one (Davison & Hinkley 1997, §3.2.1: with 3 seeds a plain stratified bootstrap covers
    ~84 % instead of 95 %). The levels stay as designed; a point with one replicate stays."""
    rng = np.random.default_rng(seed)
    out = np.empty((b, len(y)))
    for idx in _strata(groups):
        m = len(idx)
        mu = y[idx].mean()
        res = (y[idx] - mu) * (math.sqrt(m / (m - 1)) if m > 1 else 0.0)
        out[:, idx] = mu + res[rng.integers(0, m, (b, m))]
    return out


def _row_corr(x: np.ndarray, Y: np.ndarray) -> np.ndarray:
    xc = x - x.mean()
    Yc = Y - Y.mean(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (Yc @ xc) / (np.linalg.norm(Yc, axis=1) * np.linalg.norm(xc))


def expanded_levels(n: int, df: int) -> tuple[float, float]:
    """The quantiles of the expanded percentile interval (Hesterberg 2015, "What teachers
    should know about the bootstrap", §3.3): the percentile interval is too narrow in small
    samples; alpha' = 2 Phi(-sqrt(n/(n-1)) t_{alpha/2, df}) with df the residual degrees of
    freedom (n minus the design points) widens it to the t interval's coverage."""
    q = stats.t.ppf(0.5 + LEVEL / 2, max(df, 1)) * math.sqrt(n / (n - 1))
    lo = float(stats.norm.cdf(-q))
    return lo, 1 - lo


def _interval(values: np.ndarray, n: int, df: int, b: int) -> tuple[float, float]:
    values = values[np.isfinite(values)]
    if len(values) < b // 2:
        return math.nan, math.nan
    lo, hi = np.quantile(values, expanded_levels(n, df))
    return float(lo), float(hi)


def bootstrap_interval(x, y, groups, method: str, b: int = BOOT_B, seed: int = 0) -> tuple[float, float]:
    """95 % interval of r over a bootstrap of the replicates within each design point
    (:func:`resample`), expanded percentile (:func:`expanded_levels`): covers the r of the
    design's population in >= 93 % of simulated 3-seed frames (tests/test_analysis_stats.py)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    groups = np.asarray(groups)
    Y = resample(y, groups, b, seed)
    if method == "spearman":
        x, Y = stats.rankdata(x), stats.rankdata(Y, axis=1)
    return _interval(_row_corr(x, Y), len(y), len(y) - len(np.unique(groups)), b)


def replicated(groups) -> bool:
    """Whether some design point has more than one replicate (seed)."""
    _, counts = np.unique(np.asarray(groups), return_counts=True)
    return bool(len(counts)) and bool(counts.max() > 1)


def correlation(x, y, method: str = "spearman", groups=None) -> Corr:
    """Correlation of ``y`` with ``x`` over the pairs where both are finite.

    Spearman (000 eq. 5) via ``scipy.stats.spearmanr``, Pearson via ``scipy.stats.pearsonr``.
    p is two-sided: exact over all n! pairings for n <= 10 (:func:`permutation_p`), the t
    approximation above (scipy's). The 95 % interval: a bootstrap over the replicates of
    each design point (``groups``, default ``x``: the seeds at a level) where some point
    has several and n <= 5000, else Fisher's z. Fewer than 3 pairs or a constant variable:
    r and p are NaN and ``note`` says why (r is undefined there, not 0).
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    groups = x if groups is None else np.asarray(groups)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y, groups = x[keep], y[keep], groups[keep]
    n = int(len(x))
    if n < MIN_POINTS:
        return Corr(math.nan, math.nan, n, f"fewer than {MIN_POINTS} points")
    if _constant(x) or _constant(y):
        which = "level" if _constant(x) else "accuracy"
        return Corr(math.nan, math.nan, n, f"constant {which}: r undefined")
    fn = {"spearman": stats.spearmanr, "pearson": stats.pearsonr}[method]
    res = fn(x, y)
    r = float(res.statistic)
    if n <= EXACT_MAX_N:
        rx, ry = (stats.rankdata(x), stats.rankdata(y)) if method == "spearman" else (x, y)
        p, p_method = permutation_p(rx, ry), f"exact permutation (all {math.factorial(n):,} pairings)"
    else:
        p, p_method = float(res.pvalue), "t approximation"
    if replicated(groups) and n <= BOOT_MAX_N:
        lo, hi = bootstrap_interval(x, y, groups, method)
        ci = BOOT_TEXT
    else:
        lo, hi = fisher_interval(r, n, method)
        ci = "Fisher z" + (" (Bonett-Wright se)" if method == "spearman" else "")
        ci += "" if np.isfinite(lo) else (": none for |r| = 1" if abs(r) >= 1 else ": none for n < 4")
    return Corr(r, p, n, "", lo, hi, p_method, ci)


def mean_interval(y) -> tuple[float, float, float, float, int]:
    """Mean, sample sd, and the 95 % t interval of the mean of the finite values of ``y``."""
    y = np.asarray(y, float)
    y = y[np.isfinite(y)]
    n = len(y)
    if n == 0:
        return math.nan, math.nan, math.nan, math.nan, 0
    mean = float(np.mean(y))
    if n < 2:
        return mean, math.nan, math.nan, math.nan, n
    sd = float(np.std(y, ddof=1))
    half = float(stats.t.ppf(0.5 + LEVEL / 2, n - 1)) * sd / math.sqrt(n)
    return mean, sd, mean - half, mean + half, n


def t_band(mean, sd, count) -> tuple[np.ndarray, np.ndarray]:
    """Elementwise 95 % t interval of a mean from its sd and count (NaN where count < 2)."""
    mean, sd, count = (np.asarray(v, float) for v in (mean, sd, count))
    with np.errstate(invalid="ignore", divide="ignore"):
        q = np.where(count > 1, stats.t.ppf(0.5 + LEVEL / 2, np.maximum(count - 1, 1)), np.nan)
        half = q * sd / np.sqrt(count)
    return mean - half, mean + half


def group_intervals(df: pd.DataFrame, by, col: str) -> pd.DataFrame:
    """mean, sd, count and the 95 % t interval (lo, hi) of ``col`` per group of ``by``."""
    g = df.groupby(by, observed=True, sort=True)[col].agg(["mean", "std", "count"])
    g["lo"], g["hi"] = t_band(g["mean"], g["std"], g["count"])
    return g


def wilson(accuracy, n_images) -> tuple[np.ndarray, np.ndarray]:
    """95 % Wilson interval of an accuracy measured on ``n_images`` test images
    (``statsmodels.stats.proportion.proportion_confint``, method "wilson"); NaN where n is
    unknown or 0."""
    from statsmodels.stats.proportion import proportion_confint

    acc, n = np.asarray(accuracy, float), np.asarray(n_images, float)
    ok = np.isfinite(acc) & np.isfinite(n) & (n > 0)
    lo, hi = np.full(acc.shape, np.nan), np.full(acc.shape, np.nan)
    if ok.any():
        lo[ok], hi[ok] = proportion_confint(np.round(acc[ok] * n[ok]), n[ok], alpha=1 - LEVEL, method="wilson")
    return lo, hi


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
    coefs: pd.DataFrame  # index: const + factors; columns coef, se, t, p, ci_low, ci_high
    note: str = ""
    ci_low: float = math.nan  # of R: bootstrap over replicates of the design points
    ci_high: float = math.nan
    ci_method: str = ""


def _r_bootstrap(y: np.ndarray, X: np.ndarray, b: int = BOOT_B) -> tuple[float, float]:
    """Percentile interval of R over a bootstrap of y within each design point (rows of X):
    X stays as designed, so one QR serves every resample."""
    groups = np.unique(X, axis=0, return_inverse=True)[1].ravel()
    Y = resample(y, groups, b)
    q, _ = np.linalg.qr(np.column_stack([np.ones(len(X)), X]))
    fit = (Y @ q) @ q.T
    Yc = Y - Y.mean(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = 1 - ((Y - fit) ** 2).sum(axis=1) / (Yc**2).sum(axis=1)
    R = np.sqrt(np.clip(r2, 0, 1))
    return _interval(R, len(y), len(y) - int(groups.max()) - 1, b)


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
    empty = pd.DataFrame(columns=["coef", "se", "t", "p", "ci_low", "ci_high"], dtype=float)
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
    ci = fit.conf_int(alpha=1 - LEVEL)
    coefs = pd.DataFrame(
        {"coef": fit.params, "se": fit.bse, "t": fit.tvalues, "p": fit.pvalues, "ci_low": ci[0], "ci_high": ci[1]}
    )
    Xv = X.to_numpy(float)
    if replicated(np.unique(Xv, axis=0, return_inverse=True)[1].ravel()) and n <= BOOT_MAX_N:
        lo, hi = _r_bootstrap(y, Xv)
        how = BOOT_TEXT
    else:
        lo, hi, how = math.nan, math.nan, "no interval for R without replicates (seeds)"
    return Multiple(
        math.sqrt(max(r2, 0.0)),
        float(fit.f_pvalue),
        r2,
        float(fit.rsquared_adj),
        float(fit.fvalue),
        n,
        coefs,
        "; ".join(notes),
        lo,
        hi,
        how,
    )
