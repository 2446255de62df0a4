"""Per-model steps: mCV (003), per-corruption accuracy and mCE (004), Pixel-index (002)
and the corruption overlapping score (001).

Each works on the conditions of one suite (:mod:`.conditions`): the 69 test sets of
``two-factor-69``, the corruption x severity conditions of ``corruptions``, the few-pixel
settings of ``pixel``. Models are grouped by architecture and training set (seeds are
averaged in the summaries, every model is listed in the CSVs); statistics are recorded per
group with ``factor`` = the training set (``clean``, ``SP0.1GA0.1``, ``corruption:fog=3``).
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from ..errors import UserError
from . import plots
from .conditions import condition_index, lookup
from .context import Ctx, attach, excluded_text, model_labels, training_labels
from .corruption import corruption_errors, mce, overlap_score, per_corruption, robustness
from .load import Design, fmt_level
from .mcv import mean_cv, quadrant
from .pixel import flipped_share, pixel_index, wrong_share
from .recipes import CorruptionStep, MCVStep, OverlapStep, PixelStep, RefPoint, overlap_factors
from .render import Section
from .stats import band, correlation

MAX_GROUPS = 12  # training sets drawn side by side in one heatmap
GROUP = ["arch", "training set"]


def _models(ctx: Ctx, d: Design) -> pd.DataFrame:
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


def _training_order(models: pd.DataFrame) -> list[str]:
    """Training sets in design order, the clean one first."""
    names = list(dict.fromkeys(models["training set"]))
    return sorted(names, key=lambda n: n != "clean")


def _groups(models: pd.DataFrame, cols: list[str], archs: list[str]) -> pd.DataFrame:
    """Mean of ``cols`` per architecture x training set (over seeds), with the model count."""
    order = _training_order(models)
    g = models.groupby(GROUP, sort=False)[cols].mean().reset_index()
    g.insert(2, "models", models.groupby(GROUP, sort=False).size().to_numpy())
    g["_a"] = g["arch"].map({a: i for i, a in enumerate(archs)})
    g["_t"] = g["training set"].map({t: i for i, t in enumerate(order)})
    return g.sort_values(["_a", "_t"]).drop(columns=["_a", "_t"]).reset_index(drop=True)


def _group_label(arch: str, training: str, archs: list[str]) -> str:
    return training if len(archs) == 1 else f"{arch} / {training}"


def _table_or_link(ctx: Ctx, sec: Section, stem: str, df: pd.DataFrame, title: str, max_rows: int = 60, max_cols: int = 14) -> None:
    """Show ``df`` in the report when it is small enough to read; else link its CSV."""
    t = ctx.sink.table(stem, df, title)
    if len(df) <= max_rows and df.shape[1] <= max_cols:
        sec.items.append(t)
    else:
        sec.text.append(f"{title}: [{t.csv}]({t.csv}) ({len(df)} rows x {df.shape[1]} columns).")


def _record_groups(ctx: Ctx, d: Design, analysis: str, groups: pd.DataFrame, stats: dict[str, str], suite: str = "", segment: str = "") -> None:
    for _, r in groups.iterrows():
        for col, name in stats.items():
            ctx.record(analysis, d, name, float(r[col]), int(r["models"]), factor=r["training set"], arch=r["arch"], suite=suite,
                       segment=segment, note="mean over seeds" if r["models"] > 1 else "")


def _per_condition(M: pd.DataFrame, models: pd.DataFrame, conds: pd.DataFrame, archs: list[str], order: list[str]) -> pd.DataFrame:
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
    total = np.bincount(key, weights=M["accuracy"].to_numpy(float)[keep], minlength=size).reshape(len(gkeys), len(conds))
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(count > 0, total / count, np.nan)
    cols = [(a, t) for a in archs for t in order if (a, t) in set(gkeys)]
    at = {k: i for i, k in enumerate(gkeys)}
    out = pd.DataFrame(mean[[at[c] for c in cols]].T, index=pd.Index(conds["condition"], name="condition"),
                       columns=[_group_label(a, t, archs) for a, t in cols])
    return out[count.sum(axis=0) > 0] if len(out) else out


def _images_key(d: Design, suite: str) -> tuple | None:
    """Which test images a suite holds: its (n, seed) from sweep.json (suites built from the
    same n and seed hold the same stratified images); None when unknown."""
    if suite not in d.suite_specs:
        return None
    spec = d.suite_specs[suite]
    return spec.get("n"), spec.get("seed", 0)


def _clean_reference(ctx: Ctx, d: Design, suite: str, given: str | None = None) -> tuple[pd.Series, str]:
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
        return acc_of(suite, own_clean["condition"].iloc[0]), f"condition {own_clean['condition'].iloc[0]} of {suite} (the same images)"
    if key is not None:
        for s in d.suites:
            if s == suite or _images_key(d, s) != key:
                continue
            c = ctx.conditions(d, s)
            clean = c[c["perturbation"].isna()]
            if len(clean):
                cond = None if ctx.suite_kind(d, s) == "clean" else clean["condition"].iloc[0]
                return acc_of(s, cond), f"{'suite ' + s if cond is None else f'condition {cond} of {s}'} (the same test images: n and seed as {suite})"
    cs = ctx.clean_suite(d)
    if cs:
        return acc_of(cs), (f"suite {cs} (NB: not the same test images as {suite}, whose n or seed differ, so the two accuracies "
                            "also differ by image set; give both suites the same n and seed to compare like with like)")
    return pd.Series(dtype=float), "none"


# --- 003: mean accuracy and CV ------------------------------------------------------------


def _test_sets(ctx: Ctx, step: MCVStep, d: Design) -> tuple[str | None, pd.DataFrame, str]:
    suite = step.suite or next(iter(ctx.suites_of_type(d, "two-factor-69")), None)
    if suite is not None:
        n = len(ctx.conditions(d, suite))
        return suite, ctx.metrics(d, [suite]), f"the {n} conditions of suite {suite}" + (" (003 Table 4)" if n == 69 else "")
    suites = ctx.suites(d) if ctx.recipe.suites else None
    return None, ctx.metrics(d, suites), "every condition of every suite (no two-factor-69 suite in this sweep)"


def mcv_step(ctx: Ctx, step: MCVStep, d: Design) -> list[Section]:
    """003: MA and CV% per model over its test sets (the conditions of the two-factor-69
    suite when the sweep has one), the reference point, Algorithm 1's group per model, 003
    Table 2's correlations, Table 3's summary and the four-quadrant mCV plot."""
    models = _models(ctx, d)
    suite, M, what = _test_sets(ctx, step, d)
    mc = mean_cv(M).set_index("tidx")
    models = models.join(mc, how="inner")
    if suite is not None:
        ref_acc, clean_from = _clean_reference(ctx, d, suite)
    else:
        cs = ctx.clean_suite(d)
        ref_acc, clean_from = (ctx.metrics(d, [cs]).groupby("tidx")["accuracy"].mean(), f"suite {cs}") if cs else (pd.Series(dtype=float), "none")
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
            refs = {a: (per.loc[a, "MA"], per.loc[a, "CV"]) if a in per.index else (pool["MA"].mean(), pool["CV"].mean()) for a in archs}
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
            ctx.record("mcv", d, f"models_in_group_{gname}", float(((models["arch"] == a) & (models["group"] == gname)).sum()), n,
                       arch=a, suite=suite or "")
    sec.text += [excluded_text(ctx.trials(d)),
                 f"Test sets: {what}. Per model: MA = mean accuracy over its test sets (003 eq. 5 with divisor n), CV = 100 x "
                 f"population sd / mean (003 eqs. 3, 4, 6); clean accuracy from {clean_from}. Reference point: {ref_label}. "
                 "Groups (003 Algorithm 1): I MA >= rMA and CV <= rCV (best); II MA >= rMA and CV > rCV; "
                 "III MA < rMA and CV <= rCV; IV MA < rMA and CV > rCV." + (f" Note: {note}." if note else "")]
    summary = _groups(models, ["CV", "MA", "clean accuracy"], archs) if len(models) else pd.DataFrame(columns=[*GROUP, "models"])
    if len(summary):
        g_ref = summary.apply(lambda r: quadrant([r["MA"]], [r["CV"]], *refs[r["arch"]])[0], axis=1)
        summary["group"] = g_ref
    _record_groups(ctx, d, "mcv", summary, {"MA": "MA", "CV": "CV", "clean accuracy": "clean_accuracy"}, suite=suite or "")
    sec.items.append(ctx.sink.table(ctx.stem(step, d, "training_sets"), summary.rename(columns={"CV": "CV (%)"}),
                                    f"CV, mean accuracy and clean accuracy per training set, mean over seeds (003 Table 3; {d.sweep})"))
    corr_rows = []
    for y, x, name in (("CV", "MA", "CV~MA"), ("CV", "clean accuracy", "CV~clean accuracy"), ("MA", "clean accuracy", "MA~clean accuracy")):
        row = {"pair": name.replace("~", " & ")}
        for method in ("spearman", "pearson"):
            c = correlation(models[y], models[x], method)
            prefix = "" if method == "spearman" else "pearson_"
            ctx.record("mcv", d, f"{prefix}r", c.r, c.n, factor=name, suite=suite or "", band=band(c.r), note=c.note)
            ctx.record("mcv", d, f"{prefix}p", c.p, c.n, factor=name, suite=suite or "", note=c.note)
            row.update({f"{method.title()} r": c.r, f"{method.title()} p": c.p})
        row["n"] = c.n
        corr_rows.append(row)
    sec.items.append(ctx.sink.table(ctx.stem(step, d, "correlations"), pd.DataFrame(corr_rows),
                                    f"Correlations of CV, mean accuracy and clean accuracy over all models (003 Table 2; {d.sweep})"))
    cols = ["trial_id", "model", "training set", "arch", *d.factors, "seed", "clean", "MA", "CV", "clean accuracy", "test_sets", "group"]
    table = models[cols].rename(columns={"test_sets": "test sets", "CV": "CV (%)"})
    _table_or_link(ctx, sec, ctx.stem(step, d, "models"), table, f"Mean accuracy (MA, fraction) and CV (%) per model ({d.sweep})",
                   max_cols=99)
    counts = models.groupby(["arch", "group"]).size().unstack("group", fill_value=0).reset_index()
    sec.items.append(ctx.sink.table(ctx.stem(step, d, "groups"), counts, f"Models per mCV group ({d.sweep})"))
    if len(models):
        sec.add(ctx.sink.figure(ctx.stem(step, d), lambda: plots.mcv_plot(models, refs, archs, f"{d.sweep}: mCV plot", ref_label),
                                "mCV plot: mean accuracy against CV, one point per model (labelled by training set); dashed lines "
                                "through the reference point"))
    if suite is not None and len(M):
        piv = _per_condition(M, models, ctx.conditions(d, suite), archs, _training_order(models))
        piv.index = [f"{i + 1} {c}" if len(piv) == 69 else c for i, c in enumerate(piv.index)]
        t = ctx.sink.table(ctx.stem(step, d, "conditions"), piv.reset_index(names="test set"),
                           f"Accuracy per test set and training set ({d.sweep}; mean over seeds)")
        sec.text.append(f"Accuracy on every test set of {suite} per training set: [{t.csv}]({t.csv}).")
        sec.add(ctx.sink.figure(ctx.stem(step, d, "conditions"),
                                lambda: plots.heatmap_panels([(f"{suite}: accuracy per test set", piv.T)], f"{d.sweep}: accuracy on each test set of {suite}",
                                                             f"test set ({suite} order)", "training set", annotate=False),
                                f"Accuracy on each test set of {suite} (columns, in suite order) per training set (rows)"))
    return [sec]


# --- 004: per-corruption accuracy ---------------------------------------------------------


def _corruption_metrics(ctx: Ctx, d: Design, suite: str | None) -> tuple[pd.DataFrame, list[str], str, str | None]:
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
        ctx.cache[key] = (M.assign(corruption=pd.Categorical.from_codes(codes, categories=names)), names, "corruption", suite)
    return ctx.cache[key]


def corruption_step(ctx: Ctx, step: CorruptionStep, d: Design) -> list[Section]:
    """004 §4.2: P_c per corruption (mean over its severities) and the aggregate P (mean of
    P_c); with ``baseline_arch``, CE_c and mCE against that architecture's clean model(s).
    Conditions come from the corruptions suite (``"fog/3"``); without one, each level suite
    counts as a corruption (the older layout)."""
    models = _models(ctx, d)
    M, names, key, suite = _corruption_metrics(ctx, d, step.suite)
    archs = ctx.archs(d)
    sec = Section(f"{d.sweep}: per-corruption and aggregate accuracy" + (f" ({suite})" if suite else ""), level=3)
    if not names:
        sec.text.append("No corruptions suite and no suite with perturbed levels: nothing to aggregate.")
        return [sec]
    pc = per_corruption(M, names, key)
    if suite:
        ref_acc, clean_from = _clean_reference(ctx, d, suite)
    else:
        cs = ctx.clean_suite(d)
        ref_acc, clean_from = (models[f"acc_{cs}"], f"suite {cs}") if cs else (pd.Series(dtype=float), "none")
    models["clean accuracy"] = ref_acc.reindex(models.index)
    table = models[["trial_id", "model", "training set", "arch", "seed", "clean", "clean accuracy"]].join(pc, how="inner")
    if suite:
        sev = sorted(set(ctx.conditions(d, suite)["level"]))
        how = (f"Conditions: the {len(ctx.conditions(d, suite))} corruption x severity conditions of suite {suite} "
               f"({len(names)} corruptions at severities {', '.join(fmt_level(s) for s in sev)}).")
    else:
        how = ("No corruptions suite: each perturbed level suite is one corruption (the older layout): "
               + ", ".join(f"{s} ({M.loc[M['suite'] == s, 'level'].nunique()} levels)" for s in names) + ".")
    text = [excluded_text(ctx.trials(d)), how,
            "P_c = mean accuracy over the severities of corruption c; aggregate P = mean of P_c over the corruptions (004 §4.2). "
            f"Clean accuracy: {clean_from}."]
    stats = {"clean accuracy": "clean_accuracy", "aggregate": "aggregate"}
    if step.baseline_arch:
        base = models[(models["arch"] == step.baseline_arch) & models["clean"]]
        if base.empty:
            raise UserError(f"{ctx.recipe.file or 'recipe'}: corruption.baseline_arch: no clean-trained {step.baseline_arch} model "
                            f"in sweep {d.sweep} (needs a trial with every factor at its baseline)")
        err = corruption_errors(M, names, key)
        table = table.join(mce(err, err.loc[base.index].mean()), how="left")
        stats["mCE"] = "mCE"
        text.append(f"CE_c = sum over severities of the model's error / the same sum for the clean {step.baseline_arch} model "
                    f"(mean over its {len(base)} seed(s)); mCE = mean CE_c (Hendrycks & Dietterich 2019).")
    sec.text += text
    groups = _groups(table, [c for c in ("clean accuracy", "aggregate", "mCE") if c in table], archs)
    _record_groups(ctx, d, "corruption", groups, stats, suite=suite or "")
    sec.items.append(ctx.sink.table(ctx.stem(step, d, "training_sets"), groups,
                                    f"Clean and aggregate corruption accuracy (and mCE) per training set, mean over seeds ({d.sweep})"))
    pcg = _groups(table, names, archs)
    for c in names:
        _record_groups(ctx, d, "corruption", pcg, {c: "P_c"}, suite=suite or "", segment=c)
    order = _training_order(models)
    wide = pcg.assign(label=[_group_label(a, t, archs) for a, t in zip(pcg["arch"], pcg["training set"])]).set_index("label")[names].T
    sec.items.append(ctx.sink.table(ctx.stem(step, d, "per_corruption"), wide.reset_index(names="corruption"),
                                    f"P_c per corruption (rows) and training set (columns), mean over seeds ({d.sweep})"))
    _table_or_link(ctx, sec, ctx.stem(step, d, "models"), table, f"Per-corruption accuracy per model ({d.sweep})", max_cols=12)
    if suite:
        conds = ctx.conditions(d, suite)
        cond = _per_condition(M, models, conds, archs, order)
        _table_or_link(ctx, sec, ctx.stem(step, d, "conditions"), cond.reset_index(names="condition"),
                       f"Accuracy per condition (corruption/severity) and training set, mean over seeds ({d.sweep})", max_cols=12)
        if ctx.sink.plots:
            _corruption_figures(ctx, step, d, sec, cond, conds, names, wide, archs)
    return [sec]


def _corruption_figures(ctx, step, d, sec, cond, conds, names, wide, archs) -> None:
    """Heatmaps from the per-condition and per-corruption tables: accuracy per corruption x
    severity grouped by training set; P_c per corruption x training set next to its change
    against the clean-trained model."""
    info = conds.set_index("condition").loc[cond.index]
    cname = info["corruption"].where(info["corruption"].notna(), pd.Series(cond.index.str.split("/").str[0], index=cond.index))
    for arch in archs:
        labels = [c for c in cond.columns if len(archs) == 1 or c.startswith(f"{arch} / ")][:MAX_GROUPS]
        more = len([c for c in cond.columns if len(archs) == 1 or c.startswith(f"{arch} / ")]) - len(labels)
        if labels:
            long = cond[labels].assign(corr=cname.to_numpy(), sev=info["level"].to_numpy()).melt(id_vars=["corr", "sev"], var_name="set")
            piv = long.pivot_table(index="corr", columns=["set", "sev"], values="value", aggfunc="mean", sort=False)
            piv = piv.reindex(index=[n for n in names if n in piv.index], columns=[c for t in labels for c in piv.columns if c[0] == t])
            strip = (lambda t: t.split(" / ", 1)[1]) if len(archs) > 1 else (lambda t: t)
            piv.columns = pd.MultiIndex.from_tuples([(strip(t), fmt_level(s)) for t, s in piv.columns])
            sec.add(ctx.sink.figure(ctx.stem(step, d, arch, "severity"),
                                    lambda piv=piv, arch=arch: plots.heatmap_panels(
                                        [("", piv)], f"{d.sweep} / {arch}: accuracy per corruption and severity, by training set", "severity", "corruption"),
                                    f"Accuracy per corruption (rows) and severity (columns), grouped by training set ({arch}; mean over seeds)"
                                    + (f"; {more} more training sets in the tables" if more > 0 else "")))
        pa = wide[[c for c in wide.columns if len(archs) == 1 or c.startswith(f"{arch} / ")]]
        if len(archs) > 1:
            pa.columns = [c.split(" / ", 1)[1] for c in pa.columns]
        if not pa.shape[1]:
            continue
        panels = [("P_c: mean accuracy over severities", pa)]
        if "clean" in pa.columns and pa.shape[1] > 1:
            change = pa.drop(columns="clean").sub(pa["clean"], axis=0)
            panels.append(("P_c change against the clean-trained model", change,
                           {"cmap": "PuOr", "center": 0.0, "cbar_label": "accuracy change"}))
        sec.add(ctx.sink.figure(ctx.stem(step, d, arch, "per_corruption"),
                                lambda panels=panels, arch=arch: plots.heatmap_panels(
                                    panels, f"{d.sweep} / {arch}: P_c per corruption and training set", "training set", "corruption"),
                                f"P_c per corruption and training set, and its change against the clean-trained model ({arch}; mean over seeds)"))


# --- 002: Pixel-index ---------------------------------------------------------------------

EXPERIMENTS = {"count": "002 Fig. 8: pixels changed to any value anywhere", "range": "002 Fig. 9: value range ±R around the old value",
               "area": "002 Fig. 10: positions in a centred square (side in 224-pixel units)", "levels": "pixels changed"}


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


def pixel_step(ctx: Ctx, step: PixelStep, d: Design) -> list[Section]:
    """002 eq. 7: Pi = w / (p r a) per model and condition of the pixel suite, p, r, a from
    its conditions (suites.json; the recipe's keys stand in where a suite lacks them), and
    accuracy, w and Pi against the number of changed pixels per experiment (002 Figs. 8-10)."""
    models = _models(ctx, d)
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
    by_level = m["level"].to_numpy(float) / step.image_pixels if step.level_unit == "pixels" and step.image_pixels else m["level"].to_numpy(float)
    p = np.where(given_p, p, by_level)
    r = np.where(np.isnan(v["r"].astype(float)), step.value_range or 1.0, v["r"].astype(float))
    a = np.where(np.isnan(v["a"].astype(float)), step.area or 1.0, v["a"].astype(float))
    exp = np.where(pd.isna(v["experiment"]), "levels", v["experiment"]).astype(str)
    ref, ref_text = _clean_reference(ctx, d, suite, step.clean_suite)
    counted = "flipped" in m and len(m) and m["flipped"].notna().all() and len(right_unchanged) and not step.clean_suite
    mode = step.w or ("flipped" if counted else "relative" if len(ref) else "error")
    if mode == "flipped" and not counted:
        raise UserError(f"{ctx.recipe.file or 'recipe'}: pixel_index.w: flipped needs the per-image counts of a suite holding "
                        f"its unchanged images (the 'flipped' metric column); {suite} of {d.sweep} lacks them: use relative")
    if mode == "flipped":
        w = flipped_share(m["flipped"].to_numpy(float), m["tidx"].map(right_unchanged).to_numpy(float))
    else:
        clean = m["tidx"].map(ref).to_numpy(float) if mode != "error" else None
        w = wrong_share(m["accuracy"].to_numpy(float), clean, mode)
    df = m.assign(experiment=exp, setting=[_setting_label(e) for e in exp], p=p, r=r, a=a, w=w, Pi=pixel_index(w, p, r, a))
    sec = Section(f"{d.sweep}: Pixel-index on {suite}", level=3)
    w_text = {"flipped": f"w = images right unchanged and wrong after the change / images right unchanged ({ref_text}; "
                         "002 Table 4 and eq. 8, counted per image)",
              "relative": f"w = max(0, A_clean - A) / A_clean with A_clean the model's accuracy on {ref_text} (the share of the images "
                          "it recognised that the change turns wrong; 002 counts only images recognised before the change)",
              "drop": f"w = max(0, A_clean - A), A_clean on {ref_text}", "error": "w = 1 - accuracy"}[mode]
    terms = "p, r, a from the suite's conditions (suites.json)" if given_p.all() else \
        (f"p = level / {step.image_pixels} pixels" if step.level_unit == "pixels" else "p = level") + \
        f", r = {step.value_range or 1.0:g}, a = {step.area or 1.0:g} (from the recipe)"
    sec.text += [excluded_text(ctx.trials(d)),
                 f"Pi = w / (p r a) (002 eq. 7) per model and condition: {w_text}; {terms}: p = changed pixels / image pixels, "
                 "r = value range / 255, a = position area / image area. Smaller Pi = more robust. Level 0 has no Pi."]
    order = _training_order(models)
    cols = ["trial_id", "model", "training set", "arch", "seed", "condition", "experiment", "level", "p", "r", "a", "accuracy", "w", "Pi", "n"]
    table = df[cols].assign(condition=df["condition"].astype(str))
    _table_or_link(ctx, sec, ctx.stem(step, d, "models"), table, f"Pixel-index per model and condition ({d.sweep})", max_cols=99)
    summ = df.groupby([*GROUP, "condition", "experiment", "level"], observed=True, sort=False).agg(
        accuracy=("accuracy", "mean"), w=("w", "mean"), Pi=("Pi", "mean"), models=("Pi", "size")).reset_index()
    summ["condition"] = summ["condition"].astype(str)
    for _, row in summ.iterrows():
        for stat in ("Pi", "w", "accuracy"):  # 002 Table 5 (Pi), Tables 6-8 and 10 (w: misclassified share)
            ctx.record("pixel_index", d, stat, float(row[stat]), int(row["models"]), factor=row["training set"], arch=row["arch"],
                       suite=suite, segment=row["condition"], note="mean over seeds" if row["models"] > 1 else "")
    _table_or_link(ctx, sec, ctx.stem(step, d, "summary"), summ, f"Accuracy, w and Pi per training set and condition, mean over seeds ({d.sweep})")
    fams = list(dict.fromkeys(_family(e) for e in exp))
    for fam in fams:
        part = df[[_family(e) == fam for e in exp]]
        for value, what in (("accuracy", "Accuracy"), ("Pi", "Pixel-index Pi")):
            if fam in ("count", "levels"):
                piv = part.pivot_table(index=GROUP, columns="level", values=value, aggfunc="mean", sort=False)
                piv = piv.reindex([(a_, t) for a_ in archs for t in order if (a_, t) in piv.index])
            else:
                piv = part[part["training set"] == ("clean" if "clean" in order else order[0])].pivot_table(
                    index=["arch", "setting"], columns="level", values=value, aggfunc="mean", sort=False)
            piv.columns = [f"n={fmt_level(c)}" for c in piv.columns]
            who = "per training set" if fam in ("count", "levels") else f"per setting, models trained on {'clean' if 'clean' in order else order[0]}"
            sec.items.append(ctx.sink.table(ctx.stem(step, d, fam, value), piv.reset_index(),
                                            f"{what} by pixels changed, {EXPERIMENTS[fam].split(': ', 1)[-1]} ({who}; mean over seeds; {d.sweep})"))
        if not ctx.sink.plots:
            continue
        for arch in archs:
            pa = part[part["arch"] == arch]
            if fam in ("count", "levels"):
                line, lines, legend = "training set", [t for t in order if (pa["training set"] == t).any()], "trained on"
                who = "one line per training set"
            else:
                base = "clean" if "clean" in order else order[0]
                pa = pa[pa["training set"] == base]
                line, lines, legend = "setting", list(dict.fromkeys(pa["setting"])), "setting"
                who = f"one line per setting; models trained on {base}"
            sec.add(ctx.sink.figure(ctx.stem(step, d, fam, arch),
                                    lambda pa=pa, line=line, lines=lines, legend=legend, arch=arch, fam=fam:
                                    plots.pixel_lines(pa, line, lines, f"{d.sweep} / {arch}: {EXPERIMENTS[fam]}", legend),
                                    f"Accuracy, w and Pi against the pixels changed, {EXPERIMENTS[fam]} ({arch}; {who}; mean over seeds, band min-max)"))
    return [sec]


# --- 001: corruption overlapping score ----------------------------------------------------


def _overlap_terms(ctx: Ctx, step: OverlapStep, d: Design) -> tuple[dict, str]:
    """name -> (factor, level, suite or None, corruption): what M_c and R(., c) are built from."""
    if step.corruptions:
        return {n: (c.factor, c.level, c.suite, c.corruption or n) for n, c in step.corruptions.items()}, "given in the recipe"
    found = overlap_factors(d, ctx.res, step.suite)
    out = {}
    for name, f in found.items():
        levels = [lv for lv in d.factors[f] if not np.isclose(lv, d.baselines.get(f) if d.baselines.get(f) is not None else 0.0)]
        if levels:
            out[name] = (f, max(levels), None, name)
    return out, "every corruption of the corruptions suite that a corruption:<name> factor trains on, at that factor's highest level"


def overlap_step(ctx: Ctx, step: OverlapStep, d: Design) -> list[Section]:
    """001: overlapping score of every pair of corruptions, per architecture, from the
    clean model M and the models M_c trained with each corruption (:mod:`.corruption`).
    Robustness to c uses P_c of the corruptions suite (mean over its severities) or, in the
    older layout, the accuracy on c's own suite."""
    T = ctx.trials(d)
    ok = T[T["ok"]]
    terms, chosen = _overlap_terms(ctx, step, d)
    names = list(terms)
    pc, csuite = None, None
    if any(s is None for _, _, s, _ in terms.values()):
        M, cnames, key, csuite = _corruption_metrics(ctx, d, step.suite)
        pc = per_corruption(M, cnames, key)
    if step.clean_suite or csuite is None:
        clean_suite = step.clean_suite or ctx.clean_suite(d)
        clean_acc, clean_text = ok[f"acc_{clean_suite}"], f"suite {clean_suite}"
    else:
        clean_acc, clean_text = _clean_reference(ctx, d, csuite)
    missing = [n for n, (_, _, s, c) in terms.items() if s is None and (pc is None or c not in pc.columns)]
    if missing:
        raise UserError(f"{ctx.recipe.file or 'recipe'}: overlap: no corruption {missing[0]!r} in the corruptions suite of {d.sweep}")

    def accuracy(g: pd.DataFrame, name: str) -> float:
        _, _, suite, corr = terms[name]
        if suite is not None:
            return float(g[f"acc_{suite}"].mean())
        return float(pc[corr].reindex(g.index).mean())

    rob_rows, pair_rows, matrices = [], [], {}
    for arch in ctx.archs(d):
        ga = ok[ok["arch"] == arch]
        trained = {"M": ga[d.clean(ga)]}
        for name, (factor, level, _, _) in terms.items():
            at = np.isclose(ga[factor].to_numpy(float), level)
            others = d.series(ga, factor) if factor in d.factors else np.ones(len(ga), bool)
            trained[name] = ga[at & others]
        rob = {}
        for who, g in trained.items():
            acc_clean = clean_acc.reindex(g.index).mean()
            rob[who] = {n: robustness(accuracy(g, n), acc_clean) for n in names}
            rob_rows.append({"arch": arch, "model": who if who == "M" else f"M_{who}", "models": len(g), **rob[who]})
        mat = pd.DataFrame(np.eye(len(names)), index=names, columns=names)  # O(c, c) = 1 by definition
        for c1, c2 in itertools.combinations(names, 2):
            score = overlap_score(rob["M"], rob[c1], rob[c2], c1, c2)
            n = min(len(trained["M"]), len(trained[c1]), len(trained[c2]))
            why = "" if np.isfinite(score) else ("a model is missing" if n == 0 else "training on a corruption did not raise robustness to it")
            ctx.record("overlap", d, "overlap", score, n, factor=f"{c1}~{c2}", arch=arch, note=why)
            pair_rows.append({"arch": arch, "corruption 1": c1, "corruption 2": c2, "overlap": score, "n": n, "note": why})
            mat.loc[c1, c2] = mat.loc[c2, c1] = score
        matrices[arch] = mat
    sec = Section(f"{d.sweep}: corruption overlapping score", level=3)
    desc = "; ".join(f"{n}: trained with {f}={fmt_level(lv)}, robustness on " + (f"suite {s}" if s else f"{c} of the corruptions suite (P_c)")
                     for n, (f, lv, s, c) in terms.items())
    sec.text += [excluded_text(T), f"Corruptions ({chosen}): {desc}. R(M, c) = accuracy on c / clean accuracy (from {clean_text}); "
                 "O(c1, c2) = max(0, ½[(R(M_c2,c1) - R(M,c1)) / (R(M_c1,c1) - R(M,c1)) + (R(M_c1,c2) - R(M,c2)) / (R(M_c2,c2) - R(M,c2))]) "
                 "(Laugros et al. 2021, cited in 001); M = the clean-trained model, M_c = the model trained with c; "
                 "n = the fewest models behind a term (seeds are averaged)."]
    sec.items.append(ctx.sink.table(ctx.stem(step, d, "pairs"), pd.DataFrame(pair_rows), f"Overlapping scores ({d.sweep})"))
    sec.items.append(ctx.sink.table(ctx.stem(step, d, "robustness"), pd.DataFrame(rob_rows), f"Relative robustness R(model, corruption) ({d.sweep})"))
    panels = [(arch, mat) for arch, mat in matrices.items()]
    if panels:
        sec.add(ctx.sink.figure(ctx.stem(step, d, "matrix"),
                                lambda: plots.heatmap_panels(panels, f"{d.sweep}: corruption overlapping score", "corruption", "corruption",
                                                             cbar_label="overlapping score O", limits=(0.0, 1.0)),
                                "Overlapping score of every pair of corruptions (0: independent, 1: training on either is as good as the other; "
                                "n/a: undefined; the diagonal is 1 by definition), one panel per architecture"))
    return [sec]
