"""000's multi-factor steps: multiple correlation (000 Tables 6-7), orthogonal-design range
analysis and ANOVA with main-effect plots, and dual-factor heatmaps (000 Fig. 6)."""

from __future__ import annotations

from typing import Literal

import pandas as pd
from pydantic import Field

from .. import plots
from ..context import Ctx, excluded_text, levels_text
from ..load import Design
from ..options import Step
from ..orthogonal import anova, range_analysis
from ..registry import register
from ..render import Section, ci_text, significant
from ..stats import STRENGTH, band, multiple_correlation


class MultipleStep(Step):
    """000 Tables 6-7: multiple correlation R of accuracy with several factors (OLS)."""

    type: Literal["multiple"]
    factors: list[str] | None = None
    levels: Literal["nominal", "achieved"] = Field(
        "nominal", description="x: the planned levels (000) or the levels measured on the composed training set"
    )


class OrthogonalStep(Step):
    """Range analysis, ANOVA (empty columns as error) and main-effect plots."""

    type: Literal["orthogonal"]
    factors: list[str] | None = None


class Heatmap(Step):
    """000 Fig. 6: mean accuracy over a grid of two factors, per architecture."""

    type: Literal["heatmap"]
    factors: list[str] | None = Field(None, min_length=2, max_length=2)


def _varying(T: pd.DataFrame, d: Design, factors: list[str] | None) -> list[str]:
    if factors:
        return factors
    ok = T[T["ok"]]
    return [f for f in d.factors if ok[f].nunique() > 1]


def _rows_text(d: Design) -> str:
    extra = " (a one_factor design: the factors never vary together, so read R with care)" if d.one_factor else ""
    return f"Rows: every trial of the {d.type} design{extra}; each trial is one observation."


@register(MultipleStep)
def multiple_step(ctx: Ctx, step: MultipleStep, d: Design) -> list[Section]:
    """000 eq. 6, Tables 6-7: R of accuracy with the factors from statsmodels OLS (as R's
    lm), its F-test p, R², adjusted R², and each factor's coefficient, t and p."""
    T, archs, suites = ctx.trials(d, step.levels), ctx.archs(d), ctx.suites(d)
    factors = _varying(T, d, step.factors)
    key = "+".join(factors)
    sec = Section(f"{d.sweep}: multiple correlation with {', '.join(factors) or 'no factor'}", level=3)
    sec.text += [
        _rows_text(d),
        excluded_text(T),
        "R = sqrt(R²) of the OLS regression of accuracy on an intercept and the factor levels (statsmodels OLS, "
        "the model of R's lm); p is the regression's F-test p; 95 % interval of R by bootstrap over seeds (none without "
        "replicates), of each coefficient from statsmodels (t); strength per 000 §2.4 (a band of R, not a test).",
    ]
    sec.text += [t for t in [levels_text(T, factors, step.levels)] if t]
    rows, coefs = [], []
    for arch in archs:
        ga = T[T["arch"] == arch]
        ok = ga[ga["ok"]]
        for s in suites:
            m = multiple_correlation(ok[f"acc_{s}"].to_numpy(float), ok[factors])
            excl = len(ga) - m.n
            kw = dict(factor=key, arch=arch, suite=s, n_excluded=excl)
            ctx.record(
                "multiple",
                d,
                "R",
                m.R,
                m.n,
                strength=band(m.R),
                ci=(m.ci_low, m.ci_high),
                note="; ".join(filter(None, [m.note, m.ci_method])),
                **kw,
            )
            ctx.record("multiple", d, "p", m.p, m.n, p_method="F-test (statsmodels OLS)", note=m.note, **kw)
            for name, v in (("r2", m.r2), ("adj_r2", m.adj_r2), ("F", m.F)):
                ctx.record("multiple", d, name, v, m.n, note=m.note, **kw)
            rows.append(
                {
                    "arch": arch,
                    "suite": s,
                    "R": m.R,
                    "R 95% CI": ci_text(m.ci_low, m.ci_high),
                    "p (F-test)": m.p,
                    STRENGTH: band(m.R),
                    f"significant (p < {ctx.recipe.alpha:g})": significant(m.p, ctx.recipe.alpha),
                    "R²": m.r2,
                    "adj. R²": m.adj_r2,
                    "F": m.F,
                    "n": m.n,
                    "n excluded": excl,
                    "note": m.note,
                }
            )
            for term, c in m.coefs.iterrows():
                coefs.append(
                    {
                        "arch": arch,
                        "suite": s,
                        "term": term,
                        "coef": c["coef"],
                        "coef 95% CI": ci_text(c["ci_low"], c["ci_high"]),
                        "se": c["se"],
                        "t": c["t"],
                        "p": c["p"],
                        "n": m.n,
                    }
                )
                if term != "const":
                    ctx.record(
                        "multiple",
                        d,
                        f"coef:{term}",
                        float(c["coef"]),
                        m.n,
                        ci=(float(c["ci_low"]), float(c["ci_high"])),
                        note="statsmodels OLS conf_int (t)",
                        factor=key,
                        arch=arch,
                        suite=s,
                        n_excluded=excl,
                    )
                    ctx.record(
                        "multiple", d, f"t:{term}", float(c["t"]), m.n, factor=key, arch=arch, suite=s, n_excluded=excl
                    )
                    ctx.record(
                        "multiple",
                        d,
                        f"p:{term}",
                        float(c["p"]),
                        m.n,
                        p_method="t (statsmodels OLS)",
                        factor=key,
                        arch=arch,
                        suite=s,
                        n_excluded=excl,
                    )
    sec.items.append(ctx.sink.table(ctx.stem(step, d, "R"), pd.DataFrame(rows), f"Multiple correlation R ({d.sweep})"))
    if coefs:
        sec.items.append(
            ctx.sink.table(ctx.stem(step, d, "coefficients"), pd.DataFrame(coefs), f"OLS coefficients ({d.sweep})")
        )
    return [sec]


@register(OrthogonalStep)
def orthogonal_step(ctx: Ctx, step: OrthogonalStep, d: Design) -> list[Section]:
    """Range analysis (K, k, R, ranking) and main-effects ANOVA (statsmodels; the error is
    the empty columns' SS) per arch x suite, and main-effect plots (:mod:`.orthogonal`)."""
    T, archs, suites = ctx.trials(d), ctx.archs(d), ctx.suites(d)
    factors = _varying(T, d, step.factors)
    sec = Section(f"{d.sweep}: range analysis and ANOVA", level=3)
    sec.text += [
        _rows_text(d),
        excluded_text(T),
        "Range analysis: K = sum and k = mean of accuracy over the runs at a level, R = max k - min k; rank 1 = the "
        "most influential factor. ANOVA: main-effects model (statsmodels ols + anova_lm, type II); its residual is "
        + (
            "the factors' interactions (a full grid has no empty column)"
            if d.type == "grid"
            else "the empty columns' sum of squares"
        )
        + " plus pure error from replicates.",
    ]
    levels, ranks, tables, notes = [], [], [], []
    for arch in archs:
        ok = T[(T["arch"] == arch) & T["ok"]]
        for s in suites:
            y = f"acc_{s}"
            lv, rk = range_analysis(ok, y, factors)
            levels.append(lv.assign(arch=arch, suite=s))
            ranks.append(rk.assign(arch=arch, suite=s))
            for _, r in rk.iterrows():
                kw = dict(factor=r["factor"], arch=arch, suite=s)
                ctx.record("orthogonal", d, "range", r["R"], int(r["n"]), **kw)
                ctx.record("orthogonal", d, "rank", float(r["rank"]), int(r["n"]), **kw)
            tab, note = anova(ok, y, factors)
            n = int(ok[[y, *factors]].dropna().shape[0])
            tables.append(tab.assign(arch=arch, suite=s, n=n))
            if note:
                notes.append(f"{arch}/{s}: {note}")
            for _, r in tab[tab["source"] != "error"].iterrows():
                for name in ("F", "p"):
                    ctx.record(
                        "orthogonal",
                        d,
                        name,
                        float(r[name]),
                        n,
                        factor=r["source"],
                        arch=arch,
                        suite=s,
                        note=note,
                        p_method="F-test (statsmodels anova_lm, type II)" if name == "p" else "",
                    )
    front = ["arch", "suite"]
    lv_df = pd.concat(levels, ignore_index=True) if levels else pd.DataFrame()
    if len(lv_df):
        sec.items.append(
            ctx.sink.table(
                ctx.stem(step, d, "ranking"),
                pd.concat(ranks)[front + ["factor", "R", "rank", "best_level", "levels", "n"]],
                f"Range analysis: range R and rank per factor ({d.sweep})",
            )
        )
        sec.items.append(
            ctx.sink.table(
                ctx.stem(step, d, "levels"),
                lv_df[front + ["factor", "level", "K", "k", "n"]],
                f"Range analysis: K and k per level ({d.sweep})",
            )
        )
        an = pd.concat(tables, ignore_index=True)
        sec.items.append(
            ctx.sink.table(
                ctx.stem(step, d, "anova"),
                an[front + ["source", "SS", "df", "MS", "F", "p", "n"]],
                f"ANOVA, empty columns as error ({d.sweep})",
                "; ".join(notes),
            )
        )
        for arch in archs:
            sec.add(
                ctx.sink.figure(
                    ctx.stem(step, d, arch),
                    lambda: plots.main_effects(
                        lv_df[lv_df["arch"] == arch], factors, suites, f"{d.sweep} / {arch}: main effects", d.options
                    ),
                    f"Main-effect plot ({arch}): mean accuracy per level of each factor",
                )
            )
    return [sec]


@register(Heatmap)
def heatmap_step(ctx: Ctx, step: Heatmap, d: Design) -> list[Section]:
    """000 Fig. 6: mean accuracy (over seeds) on the grid of two factors, train and every
    suite, one figure per architecture."""
    T, archs, suites = ctx.trials(d), ctx.archs(d), ctx.suites(d)
    factors = step.factors or _varying(T, d, None)[:2]
    sec = Section(f"{d.sweep}: dual-factor heatmaps", level=3)
    if len(factors) < 2:
        sec.text.append("Fewer than two varying factors: no heatmap.")
        return [sec]
    fx, fy = factors
    cols = {"train": "train_acc", **{s: f"acc_{s}" for s in suites}}
    ok = T[T["ok"]]
    for arch in archs:
        sec.add(
            ctx.sink.figure(
                ctx.stem(step, d, arch),
                lambda: plots.heatmaps(
                    ok[ok["arch"] == arch],
                    fx,
                    fy,
                    cols,
                    f"{d.sweep} / {arch}: mean accuracy over {fx} x {fy}",
                    d.options,
                ),
                f"Accuracy over the {fx} x {fy} grid ({arch}; mean over seeds)",
            )
        )
    sec.text.append(excluded_text(T))
    return [sec]
