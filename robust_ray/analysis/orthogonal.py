"""Analysis of orthogonal (and full factorial) designs: range analysis and ANOVA.

000 §2.2.5 (RQ6) runs four five-level factors on an L25 orthogonal array. The classical
analysis of such an experiment is:

- range analysis: for factor j and level i, K_ij = the sum of the response over the runs
  at that level, k_ij = K_ij / (number of those runs); the range R_j = max_i k_ij -
  min_i k_ij; factors are ranked by R_j (largest first = most influential);
- ANOVA with the empty columns of the array as error. In an orthogonal array the columns'
  sums of squares add up to the total, so the empty columns' SS is exactly the residual of
  the main-effects model y ~ C(f1) + ... + C(fk). We compute type II sums of squares
  (each factor adjusted for the others: equal to type I for a balanced orthogonal array,
  still meaningful when a trial is missing) as differences of residual sums of squares of
  statsmodels fits, F = (SS/df) / (SS_error/df_error) and p from scipy's F distribution.
  Replicates (seeds) add pure error to the residual.

The main-effects model is constant within a cell (a combination of levels), so each fit is
a statsmodels WLS of the cell means weighted by the cell sizes, and the residual SS is the
within-cell SS plus the weighted cell residuals: the same numbers as an OLS on every trial
(tests check this against ``statsmodels.formula.api.ols`` + ``anova_lm``), in time that
does not grow with the number of trials.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats


def range_analysis(df: pd.DataFrame, y: str, factors: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(levels, ranking): per factor x level K, k, n; per factor range R and its rank."""
    d = df.dropna(subset=[y, *factors])
    rows, ranks = [], []
    for f in factors:
        g = d.groupby(f)[y].agg(["sum", "mean", "count"])
        for level, (K, k, n) in g.iterrows():
            rows.append({"factor": f, "level": float(level), "K": float(K), "k": float(k), "n": int(n)})
        R = float(g["mean"].max() - g["mean"].min()) if len(g) else math.nan
        best = float(g["mean"].idxmax()) if len(g) else math.nan
        ranks.append({"factor": f, "R": R, "best_level": best, "levels": int(len(g)), "n": int(g["count"].sum())})
    ranking = pd.DataFrame(ranks, columns=["factor", "R", "best_level", "levels", "n"])
    ranking["rank"] = ranking["R"].rank(ascending=False, method="min")
    return pd.DataFrame(rows, columns=["factor", "level", "K", "k", "n"]), ranking.sort_values("rank")


def _design(cells: pd.DataFrame, factors: list[str]) -> np.ndarray:
    """Intercept + treatment-coded dummies (first level dropped) of ``factors``."""
    cols = [np.ones(len(cells))]
    for f in factors:
        levels = np.sort(cells[f].unique())
        cols += [(cells[f].to_numpy() == lv).astype(float) for lv in levels[1:]]
    return np.column_stack(cols)


def _fit(cells: pd.DataFrame, factors: list[str]) -> tuple[float, int]:
    """(weighted residual SS of the cell means, rank of the design) for ``factors``."""
    X = _design(cells, factors)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = sm.WLS(cells["mean"].to_numpy(float), X, weights=cells["count"].to_numpy(float)).fit()
    return float(fit.ssr), int(np.linalg.matrix_rank(X))


def anova(df: pd.DataFrame, y: str, factors: list[str]) -> tuple[pd.DataFrame, str]:
    """Main-effects ANOVA table (source, SS, df, MS, F, p), type II, residual as error.

    Returns the table and a note (empty, or why F and p are undefined: no error degrees
    of freedom, i.e. no empty column and no replicate; or zero error variance).
    """
    cols = ["source", "SS", "df", "MS", "F", "p"]
    d = df.dropna(subset=[y, *factors])
    varying = [f for f in factors if d[f].nunique() > 1]
    if not varying or len(d) < 2:
        return pd.DataFrame(columns=cols), "no varying factor"
    groups = d.groupby(varying, sort=False)[y]
    cells = groups.agg(["mean", "count"]).reset_index()
    within = float(((d[y] - groups.transform("mean")) ** 2).sum())
    rss, rank = _fit(cells, varying)
    rss += within
    df_err = len(d) - rank
    rows = []
    for f in varying:
        rss_f, rank_f = _fit(cells, [g for g in varying if g != f])
        rows.append({"source": f, "SS": max(rss_f + within - rss, 0.0), "df": float(rank - rank_f)})
    rows.append({"source": "error", "SS": rss if df_err > 0 else 0.0, "df": float(df_err)})
    out = pd.DataFrame(rows)
    out["MS"] = out["SS"] / out["df"].where(out["df"] > 0)
    note = ""
    err_ms = rss / df_err if df_err > 0 else np.nan
    if df_err < 1:
        note = "no error degrees of freedom (no empty column and no replicate): F and p undefined"
    elif not err_ms > 0:
        note = "zero error variance: F and p undefined"
    ok = np.isfinite(err_ms) and err_ms > 0
    is_err = out["source"] == "error"
    out["F"] = np.where(is_err | (not ok), np.nan, out["MS"] / (err_ms if ok else 1.0))
    out["p"] = np.where(is_err | (not ok), np.nan, stats.f.sf(out["F"], out["df"], max(df_err, 1)))
    return out[cols], note
