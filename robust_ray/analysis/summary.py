"""What a reader sees first: the summary table that leads the report, and the five-line
summary ``robust-ray run`` prints at the end of a sweep (:func:`run_summary`).

The summary table has one row per factor x architecture x suite: accuracy at the baseline
and at the highest level (mean over seeds, 95 % interval), the level with the best mean
accuracy, Spearman r with its interval and p, and where the recipe names reference tables,
how many published numbers of that row agree and the worst disagreement.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..results import alias_columns, is_factor_column
from .load import fmt_level
from .render import ci_text

AGREES = ("same",)  # reference.compare's agreement strings that count as agreeing


def _acc(mean: float, ci: tuple[float, float]) -> str:
    if not np.isfinite(mean):
        return "n/a"
    return f"{mean:.4f} {ci_text(*ci)}" if np.isfinite(ci[0]) else f"{mean:.4f}"


def _p(p: float, method: str) -> str:
    if not np.isfinite(p):
        return "n/a"
    text = f"{p:.3g}" if p >= 1e-3 else f"{p:.2e}"
    return text + (" (exact)" if method.startswith("exact") else "")


def _reference(comparison: pd.DataFrame | None, sweep: str, factor: str, arch: str, suite: str) -> tuple[str, str]:
    """("k of n", worst disagreement) over the published numbers of one summary row."""
    if comparison is None or comparison.empty:
        return "", ""
    c = comparison[(comparison["factor"] == factor) & (comparison["arch"] == arch) & (comparison["suite"] == suite)]
    c = c[c["reproduced"].notna()]
    if c.empty:
        return "", ""
    agree = c["agreement"].astype(str).str.startswith(AGREES)
    worst = ""
    bad = c[~agree]
    if len(bad):
        row = bad.loc[bad["difference"].abs().fillna(np.inf).idxmax()]
        seg = f" {row['segment']}" if str(row["segment"]) else ""
        worst = f"{row['table']} {row['statistic']}{seg}: paper {row['published']:.3g}, ours {row['reproduced']:.3g}"
    return f"{int(agree.sum())} of {len(c)}", worst


def summary_table(rows: list[dict], comparison: pd.DataFrame | None = None) -> pd.DataFrame:
    """The leading table from the correlation steps' summary rows (:class:`.context.Ctx`)."""
    out = []
    for r in rows:
        agree, worst = _reference(comparison, r["sweep"], r["factor"], r["arch"], r["suite"])
        row = {
            "factor": r["factor"],
            "arch": r["arch"],
            "suite": r["suite"],
            "accuracy at baseline": f"{fmt_level(r['baseline'])}: {_acc(r['acc_baseline'], r['acc_baseline_ci'])}",
            "accuracy at highest level": f"{fmt_level(r['highest'])}: {_acc(r['acc_highest'], r['acc_highest_ci'])}",
            "best level": fmt_level(r["best_level"]),
            "seeds": r["n_seeds"],
            "Spearman r [95% CI]": (
                f"{r['r']:.3f} {ci_text(*r['r_ci'])}" if np.isfinite(r.get("r", np.nan)) else "n/a"
            ),
            "p": _p(r.get("p", np.nan), r.get("p_method", "")),
        }
        if comparison is not None:
            row.update({"published numbers agreeing": agree, "worst disagreement": worst})
        out.append(row)
    return pd.DataFrame(out)


def _condition(row: pd.Series, factors: list[str], baselines: dict) -> str:
    parts = [f"{f}={fmt_level(row[f])}" for f in factors if f in row and not _at(row[f], baselines.get(f))]
    return " ".join(parts) or "baseline"


def _at(v, base) -> bool:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return True
    return bool(
        np.isclose(float(v), 0.0 if base is None else float(base))
    )  # None: the identity level, 0.0 in the column


def run_summary(
    trials: pd.DataFrame,
    metrics: pd.DataFrame,
    output: str,
    factors: list[str] | None = None,
    baselines: dict | None = None,
    max_suites: int = 3,
) -> str:
    """Five lines (with up to three suites) for the end of ``robust-ray run``: the trials
    that finished, then per suite the best and the worst training condition (architecture
    and factor levels, mean accuracy over seeds), then the command to analyse ``output``.

    ``trials``/``metrics`` are the frames of trials.parquet and metrics.parquet; a suite's
    accuracy is its ``acc_<suite>`` column, else the n-weighted mean of its metrics rows."""
    baselines = baselines or {}
    ok = trials[trials["status"].astype(str) == "ok"].copy()
    trials = trials.drop(columns=list(alias_columns(trials.columns)))  # acc_mnist_c: SQL's copy of acc_mnist-c
    suites = [c[4:] for c in trials.columns if c.startswith("acc_")]
    if metrics is not None and len(metrics):
        for s in dict.fromkeys(metrics["suite"].astype(str)):
            if s not in suites:
                m = metrics[metrics["suite"].astype(str) == s]
                w = (m["accuracy"] * m["n"]).groupby(m["trial_id"].astype(str)).sum() / m["n"].groupby(
                    m["trial_id"].astype(str)
                ).sum()
                ok[f"acc_{s}"] = ok["trial_id"].astype(str).map(w)
                suites.append(s)
    factors = (
        factors
        if factors is not None
        else [c for c in trials.columns if is_factor_column(c) and pd.api.types.is_numeric_dtype(trials[c])]
    )
    lines = [
        f"{len(ok)} of {len(trials)} trials ok"
        + (f" ({len(trials) - len(ok)} not: see trials.parquet's status and error)" if len(ok) < len(trials) else "")
    ]
    keys = ["arch", *factors]
    for s in suites[:max_suites]:
        col = f"acc_{s}"
        g = ok.dropna(subset=[col])
        if g.empty:
            lines.append(f"{s}: no ok trial reported it")
            continue
        mean = g.groupby([g[k].fillna(-np.inf) if k in factors else g[k] for k in keys], dropna=False)[col].agg(
            ["mean", "size"]
        )
        best, worst = mean["mean"].idxmax(), mean["mean"].idxmin()

        def name(key) -> str:
            row = pd.Series(dict(zip(keys, key if isinstance(key, tuple) else (key,))))
            row = row.replace(-np.inf, np.nan)
            n = int(mean.loc[key, "size"])
            return f"{row['arch']} {_condition(row, factors, baselines)} {mean.loc[key, 'mean']:.4f}" + (
                f" (mean of {n} seeds)" if n > 1 else ""
            )

        lines.append(f"{s}: best {name(best)}; worst {name(worst)}")
    if len(suites) > max_suites:
        lines[-1] += f" (and {len(suites) - max_suites} more suites in the report)"
    lines.append(f"next: robust-ray analyze {output}")
    return "\n".join(lines)
