"""What the per-model steps (001-004) share: the ok trials as models with a label and
training set, means per architecture x training set (seeds averaged in the summaries, every
model listed in the CSVs), per-condition accuracy, and each model's clean reference.

Statistics are recorded per group with ``factor`` = the training set (``clean``,
``SP0.1GA0.1``, ``corruption:fog=3``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..conditions import condition_index
from ..context import Ctx, model_labels, training_labels
from ..load import Design
from ..render import Section

MAX_GROUPS = 12  # training sets drawn side by side in one heatmap
GROUP = ["arch", "training set"]


def models_of(ctx: Ctx, d: Design) -> pd.DataFrame:
    """The ok trials with a label, their training set and a clean flag (every factor at
    its baseline)."""
    key = ("models", d.sweep)
    if key not in ctx.cache:
        T = ctx.trials(d)
        ok = T[T["ok"]].copy()
        ok["clean"] = d.clean(ok)
        ok["model"] = model_labels(ok, list(d.factors))
        ok["training set"] = training_labels(ok, d)
        if "recipe" in T and T["recipe"].nunique() > 1:
            _name_recipes(ok, set(T["recipe"].astype(str)))
        ctx.cache[key] = ok
    return ctx.cache[key].copy()


def _name_recipes(ok: pd.DataFrame, recipes: set[str]) -> None:
    """A sweep that crosses training recipes (004: standard vs pgd_at) trains different models
    on the same data: the recipe joins the training set's name (``pgd_at``, ``SP0.1 + pgd_at``)
    and the model's, except ``standard``, which stays the clean reference."""
    rec = ok["recipe"].astype(str)
    named = rec.ne("standard") if "standard" in recipes else pd.Series(True, index=ok.index)
    ts = ok["training set"].astype(str)
    ok["training set"] = np.where(~named, ts, np.where(ts.eq("clean"), rec, ts + " + " + rec))
    ok["model"] = np.where(named, ok["model"].astype(str) + " " + rec, ok["model"].astype(str))
    ok["clean"] = ok["clean"] & ~named


def training_order(models: pd.DataFrame) -> list[str]:
    """Training sets in design order, the clean one first."""
    names = list(dict.fromkeys(models["training set"]))
    return sorted(names, key=lambda n: n != "clean")


def group_means(models: pd.DataFrame, cols: list[str], archs: list[str]) -> pd.DataFrame:
    """Mean of ``cols`` per architecture x training set (over seeds), with the model count."""
    order = training_order(models)
    g = models.groupby(GROUP, sort=False)[cols].mean().reset_index()
    g.insert(2, "models", models.groupby(GROUP, sort=False).size().to_numpy())
    g["_a"] = g["arch"].map({a: i for i, a in enumerate(archs)})
    g["_t"] = g["training set"].map({t: i for i, t in enumerate(order)})
    return g.sort_values(["_a", "_t"]).drop(columns=["_a", "_t"]).reset_index(drop=True)


def group_label(arch: str, training: str, archs: list[str]) -> str:
    return training if len(archs) == 1 else f"{arch} / {training}"


def table_or_link(
    ctx: Ctx, sec: Section, stem: str, df: pd.DataFrame, title: str, max_rows: int = 60, max_cols: int = 14
) -> None:
    """Show ``df`` in the report when it is small enough to read; else link its CSV."""
    t = ctx.sink.table(stem, df, title)
    if len(df) <= max_rows and df.shape[1] <= max_cols:
        sec.items.append(t)
    else:
        sec.text.append(f"{title}: [{t.csv}]({t.csv}) ({len(df)} rows x {df.shape[1]} columns).")


def record_groups(
    ctx: Ctx, d: Design, analysis: str, groups: pd.DataFrame, stats: dict[str, str], suite: str = "", segment: str = ""
) -> None:
    for _, r in groups.iterrows():
        for col, name in stats.items():
            ctx.record(
                analysis,
                d,
                name,
                float(r[col]),
                int(r["models"]),
                factor=r["training set"],
                arch=r["arch"],
                suite=suite,
                segment=segment,
                note="mean over seeds" if r["models"] > 1 else "",
            )


def per_condition(
    M: pd.DataFrame, models: pd.DataFrame, conds: pd.DataFrame, archs: list[str], order: list[str]
) -> pd.DataFrame:
    """Mean accuracy per condition (rows, suite order) x architecture/training set (columns,
    over seeds): one bincount over (group, condition) codes, as metrics can hold millions
    of rows."""
    gcode, gkeys = pd.factorize(pd.MultiIndex.from_arrays([models["arch"], models["training set"]]))
    pos = models.index.get_indexer(M["tidx"].to_numpy())
    cidx = condition_index(M, conds)
    keep = (pos >= 0) & (cidx >= 0)
    key = gcode[pos[keep]] * len(conds) + cidx[keep]
    size = len(gkeys) * len(conds)
    count = np.bincount(key, minlength=size).reshape(len(gkeys), len(conds))
    total = np.bincount(key, weights=M["accuracy"].to_numpy(float)[keep], minlength=size).reshape(
        len(gkeys), len(conds)
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(count > 0, total / count, np.nan)
    cols = [(a, t) for a in archs for t in order if (a, t) in set(gkeys)]
    at = {k: i for i, k in enumerate(gkeys)}
    out = pd.DataFrame(
        mean[[at[c] for c in cols]].T,
        index=pd.Index(conds["condition"], name="condition"),
        columns=[group_label(a, t, archs) for a, t in cols],
    )
    return out[count.sum(axis=0) > 0] if len(out) else out


def _images_key(d: Design, suite: str) -> tuple | None:
    """Which test images a suite holds: its (n, seed) from sweep.json (suites built from the
    same n and seed hold the same stratified images); None when unknown."""
    if suite not in d.suite_specs:
        return None
    spec = d.suite_specs[suite]
    return spec.get("n"), spec.get("seed", 0)


def clean_reference(ctx: Ctx, d: Design, suite: str, given: str | None = None) -> tuple[pd.Series, str]:
    """Each model's accuracy on the clean versions of ``suite``'s images (by ``tidx``), and
    where it comes from: ``given`` (a suite) if named; else an unperturbed condition of the
    same images (a clean suite or a CLEAN condition with the same n and seed); else the
    sweep's clean suite, whose images may differ (said in the text)."""

    def acc_of(s: str, cond: str | None = None) -> pd.Series:
        m = ctx.metrics(d, [s])
        if cond is not None:
            m = m[m["condition"].astype(str) == cond]
        return m.groupby("tidx")["accuracy"].mean()

    if given:
        return acc_of(given), f"suite {given}"
    key = _images_key(d, suite)
    own = ctx.conditions(d, suite)
    own_clean = own[own["perturbation"].isna() & (own["kind"] != "clean")]
    if len(own_clean):
        return acc_of(
            suite, own_clean["condition"].iloc[0]
        ), f"condition {own_clean['condition'].iloc[0]} of {suite} (the same images)"
    if key is not None:
        for s in d.suites:
            if s == suite or _images_key(d, s) != key:
                continue
            c = ctx.conditions(d, s)
            clean = c[c["perturbation"].isna()]
            if len(clean):
                cond = None if ctx.suite_kind(d, s) == "clean" else clean["condition"].iloc[0]
                return (
                    acc_of(s, cond),
                    f"{'suite ' + s if cond is None else f'condition {cond} of {s}'} (the same test images: n and seed as {suite})",
                )
    cs = ctx.clean_suite(d)
    if cs:
        return acc_of(cs), (
            f"suite {cs} (NB: not the same test images as {suite}, whose n or seed differ, so the two accuracies "
            "also differ by image set; give both suites the same n and seed to compare like with like)"
        )
    return pd.Series(dtype=float), "none"
