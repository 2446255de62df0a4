"""003: mean accuracy and CV (mCV) per model over its test sets, Algorithm 1's groups,
Tables 2-3 and the four-quadrant mCV plot."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field

from .. import plots
from ..context import Ctx, excluded_text
from ..load import Design
from ..mcv import mean_cv, quadrant
from ..options import Step, Strict
from ..registry import register
from ..render import Section
from ..stats import band, correlation
from .per_model import (
    GROUP,
    clean_reference,
    group_means,
    models_of,
    per_condition,
    record_groups,
    table_or_link,
    training_order,
)


class RefPoint(Strict):
    mean: float = Field(ge=0, le=1, description="reference mean accuracy (fraction)")
    cv: float = Field(ge=0, description="reference coefficient of variation (%)")


class MCVStep(Step):
    """003: mean accuracy, CV (%), the four-quadrant mCV plot and Algorithm 1's groups."""

    type: Literal["mcv"]
    reference: Literal["clean", "clean-per-arch", "all"] | RefPoint = "clean"
    suite: str | None = Field(
        None,
        description="the suite whose conditions are the test sets (default: the two-factor-69 suite, "
        "else every suite x condition)",
    )


def _check(step: MCVStep, i: int, chk) -> None:
    if step.suite:
        chk.need_suite(step.suite, chk.path(i, "suite"), per_level=True)


def _test_sets(ctx: Ctx, step: MCVStep, d: Design) -> tuple[str | None, pd.DataFrame, str]:
    suite = step.suite or next(iter(ctx.suites_of_type(d, "two-factor-69")), None)
    if suite is not None:
        n = len(ctx.conditions(d, suite))
        return (
            suite,
            ctx.metrics(d, [suite]),
            f"the {n} conditions of suite {suite}" + (" (003 Table 4)" if n == 69 else ""),
        )
    suites = ctx.suites(d) if ctx.recipe.suites else None
    return None, ctx.metrics(d, suites), "every condition of every suite (no two-factor-69 suite in this sweep)"


@register(MCVStep, _check, needs_metrics=True)
def mcv_step(ctx: Ctx, step: MCVStep, d: Design) -> list[Section]:
    """003: MA and CV% per model over its test sets (the conditions of the two-factor-69
    suite when the sweep has one), the reference point, Algorithm 1's group per model, 003
    Table 2's correlations, Table 3's summary and the four-quadrant mCV plot."""
    models = models_of(ctx, d)
    suite, M, what = _test_sets(ctx, step, d)
    mc = mean_cv(M).set_index("tidx")
    models = models.join(mc, how="inner")
    if suite is not None:
        ref_acc, clean_from = clean_reference(ctx, d, suite)
    else:
        cs = ctx.clean_suite(d)
        ref_acc, clean_from = (
            (ctx.metrics(d, [cs]).groupby("tidx")["accuracy"].mean(), f"suite {cs}")
            if cs
            else (pd.Series(dtype=float), "none")
        )
    models["clean accuracy"] = ref_acc.reindex(models.index)
    archs = ctx.archs(d)
    sec = Section(f"{d.sweep}: mean accuracy and CV (mCV)", level=3)
    ref = step.reference
    note = ""
    if isinstance(ref, RefPoint):
        refs = {a: (ref.mean, ref.cv) for a in archs}
        ref_label = f"given ({100 * ref.mean:.2f}%, {ref.cv:.2f}%)"
    else:
        pool = models[models["clean"]] if ref != "all" else models
        if pool.empty:
            pool, note = models, "no clean-trained model in these results: the reference is the mean of all models"
        if ref == "clean-per-arch":
            per = pool.groupby("arch")[["MA", "CV"]].mean()
            refs = {
                a: (per.loc[a, "MA"], per.loc[a, "CV"]) if a in per.index else (pool["MA"].mean(), pool["CV"].mean())
                for a in archs
            }
            ref_label = "each architecture's clean model"
        else:
            refs = {a: (pool["MA"].mean(), pool["CV"].mean()) for a in archs}
            ref_label = "mean of the clean models" if not note and ref == "clean" else "mean of all models"
    r_ma = models["arch"].map(lambda a: refs[a][0]).to_numpy(float)
    r_cv = models["arch"].map(lambda a: refs[a][1]).to_numpy(float)
    models["group"] = quadrant(models["MA"], models["CV"], r_ma, r_cv) if len(models) else []
    for a, (ma, cv) in refs.items():
        n = int((models["arch"] == a).sum())
        ctx.record("mcv", d, "ref_MA", float(ma), n, arch=a, suite=suite or "", note=ref_label)
        ctx.record("mcv", d, "ref_CV", float(cv), n, arch=a, suite=suite or "", note=ref_label)
        for gname in ("I", "II", "III", "IV"):
            ctx.record(
                "mcv",
                d,
                f"models_in_group_{gname}",
                float(((models["arch"] == a) & (models["group"] == gname)).sum()),
                n,
                arch=a,
                suite=suite or "",
            )
    sec.text += [
        excluded_text(ctx.trials(d)),
        f"Test sets: {what}. Per model: MA = mean accuracy over its test sets (003 eq. 5 with divisor n), CV = 100 x "
        f"population sd / mean (003 eqs. 3, 4, 6); clean accuracy from {clean_from}. Reference point: {ref_label}. "
        "Groups (003 Algorithm 1): I MA >= rMA and CV <= rCV (best); II MA >= rMA and CV > rCV; "
        "III MA < rMA and CV <= rCV; IV MA < rMA and CV > rCV." + (f" Note: {note}." if note else ""),
    ]
    summary = (
        group_means(models, ["CV", "MA", "clean accuracy"], archs)
        if len(models)
        else pd.DataFrame(columns=[*GROUP, "models"])
    )
    if len(summary):
        g_ref = summary.apply(lambda r: quadrant([r["MA"]], [r["CV"]], *refs[r["arch"]])[0], axis=1)
        summary["group"] = g_ref
    record_groups(
        ctx, d, "mcv", summary, {"MA": "MA", "CV": "CV", "clean accuracy": "clean_accuracy"}, suite=suite or ""
    )
    sec.items.append(
        ctx.sink.table(
            ctx.stem(step, d, "training_sets"),
            summary.rename(columns={"CV": "CV (%)"}),
            f"CV, mean accuracy and clean accuracy per training set, mean over seeds (003 Table 3; {d.sweep})",
        )
    )
    corr_rows = []
    for y, x, name in (
        ("CV", "MA", "CV~MA"),
        ("CV", "clean accuracy", "CV~clean accuracy"),
        ("MA", "clean accuracy", "MA~clean accuracy"),
    ):
        row = {"pair": name.replace("~", " & ")}
        for method in ("spearman", "pearson"):
            c = correlation(models[y], models[x], method, np.arange(len(models)))  # models, not replicates
            prefix = "" if method == "spearman" else "pearson_"
            ctx.record(
                "mcv",
                d,
                f"{prefix}r",
                c.r,
                c.n,
                factor=name,
                suite=suite or "",
                strength=band(c.r),
                ci=(c.ci_low, c.ci_high),
                note="; ".join(filter(None, [c.note, c.ci_method])),
            )
            ctx.record(
                "mcv", d, f"{prefix}p", c.p, c.n, factor=name, suite=suite or "", note=c.note, p_method=c.p_method
            )
            row.update({f"{method.title()} r": c.r, f"{method.title()} p": c.p})
        row["n"] = c.n
        corr_rows.append(row)
    sec.items.append(
        ctx.sink.table(
            ctx.stem(step, d, "correlations"),
            pd.DataFrame(corr_rows),
            f"Correlations of CV, mean accuracy and clean accuracy over all models (003 Table 2; {d.sweep})",
        )
    )
    cols = [
        "trial_id",
        "model",
        "training set",
        "arch",
        *d.factors,
        "seed",
        "clean",
        "MA",
        "CV",
        "clean accuracy",
        "test_sets",
        "group",
    ]
    table = models[cols].rename(columns={"test_sets": "test sets", "CV": "CV (%)"})
    table_or_link(
        ctx,
        sec,
        ctx.stem(step, d, "models"),
        table,
        f"Mean accuracy (MA, fraction) and CV (%) per model ({d.sweep})",
        max_cols=99,
    )
    counts = models.groupby(["arch", "group"]).size().unstack("group", fill_value=0).reset_index()
    sec.items.append(ctx.sink.table(ctx.stem(step, d, "groups"), counts, f"Models per mCV group ({d.sweep})"))
    if len(models):
        sec.add(
            ctx.sink.figure(
                ctx.stem(step, d),
                lambda: plots.mcv_plot(models, refs, archs, f"{d.sweep}: mCV plot", ref_label),
                "mCV plot: mean accuracy against CV, one point per model (labelled by training set); dashed lines "
                "through the reference point",
            )
        )
    if suite is not None and len(M):
        piv = per_condition(M, models, ctx.conditions(d, suite), archs, training_order(models))
        piv.index = [f"{i + 1} {c}" if len(piv) == 69 else c for i, c in enumerate(piv.index)]
        t = ctx.sink.table(
            ctx.stem(step, d, "conditions"),
            piv.reset_index(names="test set"),
            f"Accuracy per test set and training set ({d.sweep}; mean over seeds)",
        )
        sec.text.append(f"Accuracy on every test set of {suite} per training set: [{t.csv}]({t.csv}).")
        sec.add(
            ctx.sink.figure(
                ctx.stem(step, d, "conditions"),
                lambda: plots.heatmap_panels(
                    [(f"{suite}: accuracy per test set", piv.T)],
                    f"{d.sweep}: accuracy on each test set of {suite}",
                    f"test set ({suite} order)",
                    "training set",
                    annotate=False,
                ),
                f"Accuracy on each test set of {suite} (columns, in suite order) per training set (rows)",
            )
        )
    return [sec]
