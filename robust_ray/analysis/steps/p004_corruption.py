"""004 §4.2: per-corruption accuracy P_c, the aggregate, and mCE against a baseline model."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field

from ...errors import UserError
from .. import plots
from ..conditions import condition_index
from ..context import Ctx, excluded_text
from ..corruption import corruption_errors, mce, per_corruption
from ..load import Design, fmt_level
from ..options import Step
from ..registry import register
from ..render import Section
from .per_model import (
    MAX_GROUPS,
    clean_reference,
    group_label,
    group_means,
    models_of,
    per_condition,
    record_groups,
    table_or_link,
    training_order,
)


class CorruptionStep(Step):
    """004: per-corruption and aggregate accuracy; mCE against a baseline model."""

    type: Literal["corruption"]
    baseline_arch: str | None = Field(None, description="mCE against this arch's clean-trained model")
    suite: str | None = Field(
        None,
        description="a corruptions suite (default: the sweep's; without one, every perturbed suite is a corruption)",
    )


def _check(step: CorruptionStep, i: int, chk) -> None:
    if step.baseline_arch and not (chk.trials["arch"] == step.baseline_arch).any():
        chk.fail(chk.path(i, "baseline_arch"), f"no architecture {step.baseline_arch!r} in {chk.where}")
    if step.suite:
        chk.need_suite(step.suite, chk.path(i, "suite"), per_level=True)


def corruption_metrics(ctx: Ctx, d: Design, suite: str | None) -> tuple[pd.DataFrame, list[str], str, str | None]:
    """(metrics rows with a ``corruption`` column, corruption names, key column, suite).

    With a corruptions suite a row's corruption comes from its condition (suites.json's
    ``params.corruption``, else the name before "/"); without one every level suite is a
    corruption of its own (the older layout), keyed by ``suite``."""
    suite = suite or next(iter(ctx.suites_of_type(d, "corruptions")), None)
    if suite is None:
        names = [s for s in (ctx.recipe.suites or d.suites) if ctx.suite_kind(d, s) == "levels"]
        return ctx.metrics(d, names), names, "suite", None
    key = ("corruption-metrics", d.sweep, suite)
    if key not in ctx.cache:
        conds = ctx.conditions(d, suite)
        cname = conds["corruption"].where(conds["corruption"].notna(), conds["condition"].str.split("/").str[0])
        names = list(dict.fromkeys(cname))
        M = ctx.metrics(d, [suite])
        idx = condition_index(M, conds)
        code = pd.Index(names).get_indexer(cname)
        codes = np.where(idx >= 0, code[np.maximum(idx, 0)], -1) if len(code) else np.full(len(M), -1)
        ctx.cache[key] = (
            M.assign(corruption=pd.Categorical.from_codes(codes, categories=names)),
            names,
            "corruption",
            suite,
        )
    return ctx.cache[key]


@register(CorruptionStep, _check, needs_metrics=True)
def corruption_step(ctx: Ctx, step: CorruptionStep, d: Design) -> list[Section]:
    """004 §4.2: P_c per corruption (mean over its severities) and the aggregate P (mean of
    P_c); with ``baseline_arch``, CE_c and mCE against that architecture's clean model(s).
    Conditions come from the corruptions suite (``"fog/3"``); without one, each level suite
    counts as a corruption (the older layout)."""
    models = models_of(ctx, d)
    M, names, key, suite = corruption_metrics(ctx, d, step.suite)
    archs = ctx.archs(d)
    sec = Section(f"{d.sweep}: per-corruption and aggregate accuracy" + (f" ({suite})" if suite else ""), level=3)
    if not names:
        sec.text.append("No corruptions suite and no suite with perturbed levels: nothing to aggregate.")
        return [sec]
    pc = per_corruption(M, names, key)
    if suite:
        ref_acc, clean_from = clean_reference(ctx, d, suite)
    else:
        cs = ctx.clean_suite(d)
        ref_acc, clean_from = (models[f"acc_{cs}"], f"suite {cs}") if cs else (pd.Series(dtype=float), "none")
    models["clean accuracy"] = ref_acc.reindex(models.index)
    table = models[["trial_id", "model", "training set", "arch", "seed", "clean", "clean accuracy"]].join(
        pc, how="inner"
    )
    if suite:
        sev = sorted(set(ctx.conditions(d, suite)["level"]))
        how = (
            f"Conditions: the {len(ctx.conditions(d, suite))} corruption x severity conditions of suite {suite} "
            f"({len(names)} corruptions at severities {', '.join(fmt_level(s) for s in sev)})."
        )
    else:
        how = (
            "No corruptions suite: each perturbed level suite is one corruption (the older layout): "
            + ", ".join(f"{s} ({M.loc[M['suite'] == s, 'level'].nunique()} levels)" for s in names)
            + "."
        )
    text = [
        excluded_text(ctx.trials(d)),
        how,
        "P_c = mean accuracy over the severities of corruption c; aggregate P = mean of P_c over the corruptions (004 §4.2). "
        f"Clean accuracy: {clean_from}.",
    ]
    stats = {"clean accuracy": "clean_accuracy", "aggregate": "aggregate"}
    if step.baseline_arch:
        base = models[(models["arch"] == step.baseline_arch) & models["clean"]]
        if base.empty:
            raise UserError(
                f"{ctx.recipe.file or 'recipe'}: corruption.baseline_arch: no clean-trained {step.baseline_arch} model "
                f"in sweep {d.sweep} (needs a trial with every factor at its baseline)"
            )
        err = corruption_errors(M, names, key)
        table = table.join(mce(err, err.loc[base.index].mean()), how="left")
        stats["mCE"] = "mCE"
        text.append(
            f"CE_c = sum over severities of the model's error / the same sum for the clean {step.baseline_arch} model "
            f"(mean over its {len(base)} seed(s)); mCE = mean CE_c (Hendrycks & Dietterich 2019)."
        )
    sec.text += text
    groups = group_means(table, [c for c in ("clean accuracy", "aggregate", "mCE") if c in table], archs)
    record_groups(ctx, d, "corruption", groups, stats, suite=suite or "")
    sec.items.append(
        ctx.sink.table(
            ctx.stem(step, d, "training_sets"),
            groups,
            f"Clean and aggregate corruption accuracy (and mCE) per training set, mean over seeds ({d.sweep})",
        )
    )
    pcg = group_means(table, names, archs)
    for c in names:
        record_groups(ctx, d, "corruption", pcg, {c: "P_c"}, suite=suite or "", segment=c)
    order = training_order(models)
    wide = (
        pcg.assign(label=[group_label(a, t, archs) for a, t in zip(pcg["arch"], pcg["training set"])])
        .set_index("label")[names]
        .T
    )
    sec.items.append(
        ctx.sink.table(
            ctx.stem(step, d, "per_corruption"),
            wide.reset_index(names="corruption"),
            f"P_c per corruption (rows) and training set (columns), mean over seeds ({d.sweep})",
        )
    )
    table_or_link(
        ctx, sec, ctx.stem(step, d, "models"), table, f"Per-corruption accuracy per model ({d.sweep})", max_cols=12
    )
    if suite:
        conds = ctx.conditions(d, suite)
        cond = per_condition(M, models, conds, archs, order)
        table_or_link(
            ctx,
            sec,
            ctx.stem(step, d, "conditions"),
            cond.reset_index(names="condition"),
            f"Accuracy per condition (corruption/severity) and training set, mean over seeds ({d.sweep})",
            max_cols=12,
        )
        if ctx.sink.plots:
            _corruption_figures(ctx, step, d, sec, cond, conds, names, wide, archs)
    return [sec]


def _corruption_figures(ctx, step, d, sec, cond, conds, names, wide, archs) -> None:
    """Heatmaps from the per-condition and per-corruption tables: accuracy per corruption x
    severity grouped by training set; P_c per corruption x training set next to its change
    against the clean-trained model."""
    info = conds.set_index("condition").loc[cond.index]
    cname = info["corruption"].where(
        info["corruption"].notna(), pd.Series(cond.index.str.split("/").str[0], index=cond.index)
    )
    for arch in archs:
        labels = [c for c in cond.columns if len(archs) == 1 or c.startswith(f"{arch} / ")][:MAX_GROUPS]
        more = len([c for c in cond.columns if len(archs) == 1 or c.startswith(f"{arch} / ")]) - len(labels)
        if labels:
            long = (
                cond[labels]
                .assign(corr=cname.to_numpy(), sev=info["level"].to_numpy())
                .melt(id_vars=["corr", "sev"], var_name="set")
            )
            piv = long.pivot_table(index="corr", columns=["set", "sev"], values="value", aggfunc="mean", sort=False)
            piv = piv.reindex(
                index=[n for n in names if n in piv.index],
                columns=[c for t in labels for c in piv.columns if c[0] == t],
            )
            strip = (lambda t: t.split(" / ", 1)[1]) if len(archs) > 1 else (lambda t: t)
            piv.columns = pd.MultiIndex.from_tuples([(strip(t), fmt_level(s)) for t, s in piv.columns])
            sec.add(
                ctx.sink.figure(
                    ctx.stem(step, d, arch, "severity"),
                    lambda piv=piv, arch=arch: plots.heatmap_panels(
                        [("", piv)],
                        f"{d.sweep} / {arch}: accuracy per corruption and severity, by training set",
                        "severity",
                        "corruption",
                    ),
                    f"Accuracy per corruption (rows) and severity (columns), grouped by training set ({arch}; mean over seeds)"
                    + (f"; {more} more training sets in the tables" if more > 0 else ""),
                )
            )
        pa = wide[[c for c in wide.columns if len(archs) == 1 or c.startswith(f"{arch} / ")]]
        if len(archs) > 1:
            pa.columns = [c.split(" / ", 1)[1] for c in pa.columns]
        if not pa.shape[1]:
            continue
        panels = [("P_c: mean accuracy over severities", pa)]
        if "clean" in pa.columns and pa.shape[1] > 1:
            change = pa.drop(columns="clean").sub(pa["clean"], axis=0)
            panels.append(
                (
                    "P_c change against the clean-trained model",
                    change,
                    {"cmap": "PuOr", "center": 0.0, "cbar_label": "accuracy change"},
                )
            )
        sec.add(
            ctx.sink.figure(
                ctx.stem(step, d, arch, "per_corruption"),
                lambda panels=panels, arch=arch: plots.heatmap_panels(
                    panels, f"{d.sweep} / {arch}: P_c per corruption and training set", "training set", "corruption"
                ),
                f"P_c per corruption and training set, and its change against the clean-trained model ({arch}; mean over seeds)",
            )
        )
