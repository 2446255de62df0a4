"""Analysis of orthogonal (and full factorial) designs: range analysis and ANOVA.

000 §2.2.5 (RQ6) runs four five-level factors on an L25 orthogonal array. The classical
analysis of such an experiment is:

- range analysis: for factor j and level i, K_ij = the sum of the response over the runs
  at that level, k_ij = K_ij / (number of those runs); the range R_j = max_i k_ij -
  min_i k_ij; factors are ranked by R_j (largest first = most influential);
- ANOVA with the empty columns of the array as error. In an orthogonal array the columns'
  sums of squares add up to the total, so the empty columns' SS is exactly the residual of
  the main-effects model y ~ C(f1) + ... + C(fk): we fit that model with statsmodels
  (``ols`` + ``anova_lm``, type II, which equals type I for a balanced orthogonal array and
  stays meaningful when a trial is missing). Replicates (seeds) add pure error to it.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from statsmodels.formula.api import ols
from statsmodels.stats.anova import anova_lm


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


def anova(df: pd.DataFrame, y: str, factors: list[str]) -> tuple[pd.DataFrame, str]:
    """Main-effects ANOVA table (source, SS, df, MS, F, p) with the residual as error.

    Returns the table and a note (empty, or why F and p are undefined: no error degrees
    of freedom, i.e. no empty column and no replicate).
    """
    d = df.dropna(subset=[y, *factors])
    names = {f: f"x{i}" for i, f in enumerate(factors)}
    data = d[[*factors, y]].rename(columns={**names, y: "y"})
    varying = [f for f in factors if data[names[f]].nunique() > 1]
    cols = ["source", "SS", "df", "MS", "F", "p"]
    if not varying or len(data) < 2:
        return pd.DataFrame(columns=cols), "no varying factor"
    model = ols("y ~ " + " + ".join(f"C({names[f]})" for f in varying), data).fit()
    note = ""
    if model.df_resid < 1:
        note = "no error degrees of freedom (no empty column and no replicate): F and p undefined"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # type I when there is no error: its SS are defined, and equal type II's here
        table = anova_lm(model, typ=2 if model.df_resid >= 1 else 1)
    back = {f"C({names[f]})": f for f in varying}
    out = pd.DataFrame(
        {
            "source": [back.get(i, "error" if i == "Residual" else i) for i in table.index],
            "SS": table["sum_sq"].to_numpy(float),
            "df": table["df"].to_numpy(float),
        }
    )
    out.loc[out["source"] == "error", "df"] = float(model.df_resid)
    out["MS"] = out["SS"] / out["df"].where(out["df"] > 0)
    err_ms = float(out.loc[out["source"] == "error", "MS"].iloc[0]) if model.df_resid >= 1 else math.nan
    out["F"] = np.where(out["source"] == "error", np.nan, out["MS"] / err_ms if err_ms > 0 else np.nan)
    out["p"] = table["PR(>F)"].to_numpy(float) if model.df_resid >= 1 else np.nan
    out.loc[out["source"] == "error", "p"] = np.nan
    if model.df_resid >= 1 and not err_ms > 0:
        note = "zero error variance: F and p undefined"
        out["p"] = np.nan
    return out[cols], note
