"""002: the Pixel-index Pi = w / (p r a) per model and condition of the pixel suite, and
accuracy, w and Pi against the number of changed pixels (002 Figs. 8-10)."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field

from ...errors import UserError
from .. import plots
from ..conditions import lookup
from ..context import Ctx, attach, excluded_text
from ..load import Design, fmt_level
from ..options import Step
from ..pixel import flipped_share, pixel_index, wrong_share
from ..registry import register
from ..render import Section
from ..select import clean_suites, sweep_suites
from .per_model import GROUP, clean_reference, models_of, table_or_link, training_order


class PixelStep(Step):
    """002: Pixel-index Pi = w / (p r a) and accuracy against the number of pixels. p, r, a
    come from the pixel suite's conditions (suites.json); the keys below stand in for them
    on suites that lack them (a generic few_pixel suite, results without suites.json)."""

    type: Literal["pixel_index"]
    suite: str | None = Field(None, description="default: the sweep's pixel suite")
    image_pixels: int | None = Field(
        None, ge=1, description="pixels per image, for p = level / image_pixels where suites.json has no p"
    )
    level_unit: Literal["pixels", "fraction"] = "pixels"
    value_range: float | None = Field(None, gt=0, le=1, description="r where suites.json has none (default 1)")
    area: float | None = Field(None, gt=0, le=1, description="a where suites.json has none (default 1)")
    w: Literal["flipped", "relative", "drop", "error"] | None = Field(
        None,
        description="default: flipped where the metrics count the images a change turned wrong, else relative "
        "when there is a clean reference, else error",
    )
    clean_suite: str | None = None


def _check(step: PixelStep, i: int, chk) -> None:
    if step.suite:
        chk.need_suite(step.suite, chk.path(i, "suite"), per_level=True)
    if step.clean_suite:
        chk.need_suite(step.clean_suite, chk.path(i, "clean_suite"), per_level=True)
        chk.need_clean(step.clean_suite, chk.path(i, "clean_suite"))
    for d in chk.targets:
        suite = step.suite or next(iter(sweep_suites(chk.results, d, "pixel")), None)
        if suite is None:
            chk.fail(
                chk.path(i, "suite"),
                f"no pixel suite in {d.folder} (suites: {', '.join(d.suites)}); name the few-pixel suite",
            )
        c = chk.results.conditions
        c = c[
            (c["sweep"] == d.sweep) & (c["suite"] == suite) & c["perturbation"].notna()
        ]  # the unchanged images have no p
        if c["p"].isna().any() and step.image_pixels is None and step.level_unit == "pixels":
            chk.fail(
                chk.path(i, "image_pixels"),
                f"suite {suite!r} of {d.folder} has no Pixel-index terms p, r, a "
                "(no suites.json, or a generic few_pixel suite): give image_pixels (e.g. 784 for 28x28)",
            )
        own = chk.results.conditions
        own = own[
            (own["sweep"] == d.sweep) & (own["suite"] == suite) & own["perturbation"].isna()
        ]  # its unchanged images
        if step.w in ("drop", "relative") and not step.clean_suite and own.empty and not clean_suites(chk.results, d):
            chk.fail(
                chk.path(i, "w"),
                f"w: {step.w} compares with the unchanged images, and {d.folder} has neither a clean suite nor "
                f"an unchanged condition in {suite}: give clean_suite",
            )


EXPERIMENTS = {
    "count": "002 Fig. 8: pixels changed to any value anywhere",
    "range": "002 Fig. 9: value range ±R around the old value",
    "area": "002 Fig. 10: positions in a centred square (side in 224-pixel units)",
    "levels": "pixels changed",
}


def _family(exp: str) -> str:
    return next((f for f in ("count", "range", "area") if str(exp).startswith(f)), "levels")


def _setting_label(exp: str) -> str:
    if exp.startswith("range"):
        return f"±{exp[5:]}"
    if exp.startswith("area-a"):
        return f"area a={exp[6:]}"
    if exp.startswith("area"):
        return f"{exp[4:]}x{exp[4:]} of 224"
    return exp


@register(PixelStep, _check, needs_metrics=True)
def pixel_step(ctx: Ctx, step: PixelStep, d: Design) -> list[Section]:
    """002 eq. 7: Pi = w / (p r a) per model and condition of the pixel suite, p, r, a from
    its conditions (suites.json; the recipe's keys stand in where a suite lacks them), and
    accuracy, w and Pi against the number of changed pixels per experiment (002 Figs. 8-10)."""
    models = models_of(ctx, d)
    archs = ctx.archs(d)
    suite = step.suite or ctx.suites_of_type(d, "pixel")[0]
    conds = ctx.conditions(d, suite)
    m = attach(ctx.metrics(d, [suite]), models, ["trial_id", "model", "arch", "training set", "seed"])
    unchanged = conds.loc[conds["perturbation"].isna(), "condition"].astype(str)
    base = m[m["condition"].astype(str).isin(unchanged)]
    # images each model got right unchanged (the suite's own unchanged condition): w's denominator
    right_unchanged = (base["accuracy"] * base["n"]).round().groupby(base["tidx"]).sum()
    changed = conds.loc[conds["perturbation"].notna(), "condition"].astype(str)
    m = m[m["condition"].astype(str).isin(changed)]  # the unchanged images are the reference, not a point
    v = lookup(m, conds, ["experiment", "p", "r", "a"])
    p = v["p"].astype(float)
    given_p = ~np.isnan(p)
    by_level = (
        m["level"].to_numpy(float) / step.image_pixels
        if step.level_unit == "pixels" and step.image_pixels
        else m["level"].to_numpy(float)
    )
    p = np.where(given_p, p, by_level)
    r = np.where(np.isnan(v["r"].astype(float)), step.value_range or 1.0, v["r"].astype(float))
    a = np.where(np.isnan(v["a"].astype(float)), step.area or 1.0, v["a"].astype(float))
    exp = np.where(pd.isna(v["experiment"]), "levels", v["experiment"]).astype(str)
    ref, ref_text = clean_reference(ctx, d, suite, step.clean_suite)
    counted = "flipped" in m and len(m) and m["flipped"].notna().all() and len(right_unchanged) and not step.clean_suite
    mode = step.w or ("flipped" if counted else "relative" if len(ref) else "error")
    if mode == "flipped" and not counted:
        raise UserError(
            f"{ctx.recipe.file or 'recipe'}: pixel_index.w: flipped needs the per-image counts of a suite holding "
            f"its unchanged images (the 'flipped' metric column); {suite} of {d.sweep} lacks them: use relative"
        )
    if mode == "flipped":
        w = flipped_share(m["flipped"].to_numpy(float), m["tidx"].map(right_unchanged).to_numpy(float))
    else:
        clean = m["tidx"].map(ref).to_numpy(float) if mode != "error" else None
        w = wrong_share(m["accuracy"].to_numpy(float), clean, mode)
    df = m.assign(
        experiment=exp, setting=[_setting_label(e) for e in exp], p=p, r=r, a=a, w=w, Pi=pixel_index(w, p, r, a)
    )
    sec = Section(f"{d.sweep}: Pixel-index on {suite}", level=3)
    w_text = {
        "flipped": f"w = images right unchanged and wrong after the change / images right unchanged ({ref_text}; "
        "002 Table 4 and eq. 8, counted per image)",
        "relative": f"w = max(0, A_clean - A) / A_clean with A_clean the model's accuracy on {ref_text} (the share of the images "
        "it recognised that the change turns wrong; 002 counts only images recognised before the change)",
        "drop": f"w = max(0, A_clean - A), A_clean on {ref_text}",
        "error": "w = 1 - accuracy",
    }[mode]
    terms = (
        "p, r, a from the suite's conditions (suites.json)"
        if given_p.all()
        else (f"p = level / {step.image_pixels} pixels" if step.level_unit == "pixels" else "p = level")
        + f", r = {step.value_range or 1.0:g}, a = {step.area or 1.0:g} (from the recipe)"
    )
    sec.text += [
        excluded_text(ctx.trials(d)),
        f"Pi = w / (p r a) (002 eq. 7) per model and condition: {w_text}; {terms}: p = changed pixels / image pixels, "
        "r = value range / 255, a = position area / image area. Smaller Pi = more robust. Level 0 has no Pi.",
    ]
    order = training_order(models)
    cols = [
        "trial_id",
        "model",
        "training set",
        "arch",
        "seed",
        "condition",
        "experiment",
        "level",
        "p",
        "r",
        "a",
        "accuracy",
        "w",
        "Pi",
        "n",
    ]
    table = df[cols].assign(condition=df["condition"].astype(str))
    table_or_link(
        ctx, sec, ctx.stem(step, d, "models"), table, f"Pixel-index per model and condition ({d.sweep})", max_cols=99
    )
    summ = (
        df.groupby([*GROUP, "condition", "experiment", "level"], observed=True, sort=False)
        .agg(accuracy=("accuracy", "mean"), w=("w", "mean"), Pi=("Pi", "mean"), models=("Pi", "size"))
        .reset_index()
    )
    summ["condition"] = summ["condition"].astype(str)
    for _, row in summ.iterrows():
        for stat in ("Pi", "w", "accuracy"):  # 002 Table 5 (Pi), Tables 6-8 and 10 (w: misclassified share)
            ctx.record(
                "pixel_index",
                d,
                stat,
                float(row[stat]),
                int(row["models"]),
                factor=row["training set"],
                arch=row["arch"],
                suite=suite,
                segment=row["condition"],
                note="mean over seeds" if row["models"] > 1 else "",
            )
    table_or_link(
        ctx,
        sec,
        ctx.stem(step, d, "summary"),
        summ,
        f"Accuracy, w and Pi per training set and condition, mean over seeds ({d.sweep})",
    )
    fams = list(dict.fromkeys(_family(e) for e in exp))
    for fam in fams:
        part = df[[_family(e) == fam for e in exp]]
        for value, what in (("accuracy", "Accuracy"), ("Pi", "Pixel-index Pi")):
            if fam in ("count", "levels"):
                piv = part.pivot_table(index=GROUP, columns="level", values=value, aggfunc="mean", sort=False)
                piv = piv.reindex([(a_, t) for a_ in archs for t in order if (a_, t) in piv.index])
            else:
                piv = part[part["training set"] == ("clean" if "clean" in order else order[0])].pivot_table(
                    index=["arch", "setting"], columns="level", values=value, aggfunc="mean", sort=False
                )
            piv.columns = [f"n={fmt_level(c)}" for c in piv.columns]
            who = (
                "per training set"
                if fam in ("count", "levels")
                else f"per setting, models trained on {'clean' if 'clean' in order else order[0]}"
            )
            sec.items.append(
                ctx.sink.table(
                    ctx.stem(step, d, fam, value),
                    piv.reset_index(),
                    f"{what} by pixels changed, {EXPERIMENTS[fam].split(': ', 1)[-1]} ({who}; mean over seeds; {d.sweep})",
                )
            )
        if not ctx.sink.plots:
            continue
        for arch in archs:
            pa = part[part["arch"] == arch]
            if fam in ("count", "levels"):
                line, lines, legend = (
                    "training set",
                    [t for t in order if (pa["training set"] == t).any()],
                    "trained on",
                )
                who = "one line per training set"
            else:
                base = "clean" if "clean" in order else order[0]
                pa = pa[pa["training set"] == base]
                line, lines, legend = "setting", list(dict.fromkeys(pa["setting"])), "setting"
                who = f"one line per setting; models trained on {base}"
            sec.add(
                ctx.sink.figure(
                    ctx.stem(step, d, fam, arch),
                    lambda pa=pa, line=line, lines=lines, legend=legend, arch=arch, fam=fam: plots.pixel_lines(
                        pa, line, lines, f"{d.sweep} / {arch}: {EXPERIMENTS[fam]}", legend
                    ),
                    f"Accuracy, w and Pi against the pixels changed, {EXPERIMENTS[fam]} ({arch}; {who}; mean over seeds, band min-max)",
                )
            )
    return [sec]
