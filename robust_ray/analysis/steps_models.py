"""Per-model steps: mCV (003), per-corruption accuracy and mCE (004), Pixel-index (002)
and the corruption overlapping score (001)."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from ..errors import UserError
from . import plots
from .context import Ctx, attach, excluded_text, model_labels
from .corruption import corruption_errors, mce, overlap_score, per_corruption, robustness
from .load import Design, fmt_level
from .mcv import mean_cv, quadrant
from .pixel import pixel_index
from .recipes import CorruptionStep, MCVStep, OverlapStep, PixelStep, RefPoint
from .render import Section


def _models(ctx: Ctx, d: Design) -> pd.DataFrame:
    """The ok trials with a label and a clean flag (every factor at its baseline)."""
    key = ("models", d.sweep)
    if key not in ctx.cache:
        T = ctx.trials(d)
        ok = T[T["ok"]].copy()
        ok["clean"] = d.clean(ok)
        ok["model"] = model_labels(ok, list(d.factors))
        ctx.cache[key] = ok
    return ctx.cache[key].copy()


def _shown(df: pd.DataFrame, by: list[str], cols: list[str]) -> pd.DataFrame:
    """A per-architecture summary (mean, min, max, count) of per-model columns."""
    g = df.groupby(by)[cols].agg(["mean", "min", "max"])
    g.columns = [f"{c} {s}" for c, s in g.columns]
    return g.assign(models=df.groupby(by).size()).reset_index()


def mcv_step(ctx: Ctx, step: MCVStep, d: Design) -> list[Section]:
    """003: MA and CV% per model over its test sets (every suite x level), the reference
    point, Algorithm 1's group per model, and the four-quadrant mCV plot."""
    models = _models(ctx, d)
    suites = ctx.suites(d) if ctx.recipe.suites else None
    mc = mean_cv(ctx.metrics(d, suites)).set_index("tidx")
    models = models.join(mc, how="inner")
    sec = Section(f"{d.sweep}: mean accuracy and CV (mCV)", level=3)
    ref = step.reference
    note = ""
    if isinstance(ref, RefPoint):
        refs = {a: (ref.mean, ref.cv) for a in ctx.archs(d)}
        ref_label = f"given ({100 * ref.mean:.2f}%, {ref.cv:.2f}%)"
    else:
        pool = models[models["clean"]] if ref != "all" else models
        if pool.empty:
            pool, note = models, "no clean-trained model in these results: the reference is the mean of all models"
        if ref == "clean-per-arch":
            per = pool.groupby("arch")[["MA", "CV"]].mean()
            refs = {a: (per.loc[a, "MA"], per.loc[a, "CV"]) if a in per.index else (pool["MA"].mean(), pool["CV"].mean()) for a in ctx.archs(d)}
            ref_label = "each architecture's clean model"
        else:
            refs = {a: (pool["MA"].mean(), pool["CV"].mean()) for a in ctx.archs(d)}
            ref_label = "mean of the clean models" if not note and ref == "clean" else "mean of all models"
    r_ma = models["arch"].map(lambda a: refs[a][0]).to_numpy(float)
    r_cv = models["arch"].map(lambda a: refs[a][1]).to_numpy(float)
    models["group"] = quadrant(models["MA"], models["CV"], r_ma, r_cv) if len(models) else []
    for a, (ma, cv) in refs.items():
        n = int((models["arch"] == a).sum())
        ctx.record("mcv", d, "ref_MA", float(ma), n, arch=a, note=ref_label)
        ctx.record("mcv", d, "ref_CV", float(cv), n, arch=a, note=ref_label)
        for gname in ("I", "II", "III", "IV"):
            ctx.record("mcv", d, f"models_in_group_{gname}", float(((models["arch"] == a) & (models["group"] == gname)).sum()), n, arch=a)
    sec.text += [excluded_text(ctx.trials(d)),
                 "Per model: MA = mean accuracy over its test sets (every suite x level), CV = 100 x population sd / mean (003 eqs. 3-6). "
                 f"Reference point: {ref_label}. Groups (003 Algorithm 1): I MA >= rMA and CV <= rCV (best); II MA >= rMA and CV > rCV; "
                 "III MA < rMA and CV <= rCV; IV MA < rMA and CV > rCV." + (f" Note: {note}." if note else "")]
    cols = ["model", "arch", *d.factors, "seed", "clean", "MA", "CV", "test_sets", "group"]
    table = models[cols].rename(columns={"test_sets": "test sets"})
    sec.items.append(ctx.sink.table(ctx.stem(step, d, "models"), table, f"Mean accuracy (MA, fraction) and CV (%) per model ({d.sweep})"))
    counts = models.groupby(["arch", "group"]).size().unstack("group", fill_value=0).reset_index()
    sec.items.append(ctx.sink.table(ctx.stem(step, d, "groups"), counts, f"Models per mCV group ({d.sweep})"))
    if len(models):
        sec.add(ctx.sink.figure(ctx.stem(step, d), lambda: plots.mcv_plot(models, refs, ctx.archs(d), f"{d.sweep}: mCV plot", ref_label),
                                "mCV plot: mean accuracy against CV; dashed lines through the reference point"))
    return [sec]


def _perturbed(m: pd.DataFrame, suites: list[str]) -> tuple[list[str], list[str]]:
    """(corruption suites, clean suites): a suite whose only level is 0 is a clean one."""
    levels = m.groupby("suite")["level"].agg(lambda s: set(np.round(s.unique(), 9)))
    clean = [s for s in suites if s in levels.index and levels[s] <= {0.0}]
    return [s for s in suites if s in levels.index and s not in clean], clean


def corruption_step(ctx: Ctx, step: CorruptionStep, d: Design) -> list[Section]:
    """004 §4.2: P_c per corruption suite (mean over its levels) and the aggregate P; with
    ``baseline_arch``, CE_c and mCE against that architecture's clean model(s)."""
    models = _models(ctx, d)
    suites = ctx.recipe.suites or d.suites
    M = ctx.metrics(d)
    corrupt, clean = _perturbed(M, suites)
    sec = Section(f"{d.sweep}: per-corruption and aggregate accuracy", level=3)
    if not corrupt:
        sec.text.append("No suite with perturbed levels: nothing to aggregate.")
        return [sec]
    pc = per_corruption(M, corrupt)
    table = models[["model", "arch", "clean", *[f"acc_{s}" for s in clean]]].join(pc, how="inner")
    text = [excluded_text(ctx.trials(d)),
            f"P_c = mean accuracy over the levels of corruption suite c; aggregate = mean of P_c over {', '.join(corrupt)} (004 §4.2). "
            "Levels per corruption (n behind each P_c): " + ", ".join(f"{s} {M.loc[M['suite'] == s, 'level'].nunique()}" for s in corrupt) + "."]
    if step.baseline_arch:
        base = models[(models["arch"] == step.baseline_arch) & models["clean"]]
        if base.empty:
            raise UserError(f"{ctx.recipe.file or 'recipe'}: corruption.baseline_arch: no clean-trained {step.baseline_arch} model "
                            f"in sweep {d.sweep} (needs a trial with every factor at its baseline)")
        err = corruption_errors(M, corrupt)
        base_err = err.loc[base.index].mean()
        table = table.join(mce(err, base_err), how="left")
        text.append(f"CE_c = sum over levels of the model's error / the same sum for the clean {step.baseline_arch} model "
                    f"(mean over its {len(base)} seed(s)); mCE = mean CE_c (Hendrycks & Dietterich 2019).")
    value_cols = [c for c in table.columns if c not in ("model", "arch", "clean")]
    for _, r in table[table["clean"]].iterrows():
        for c in ("aggregate", "mCE"):
            if c in table:
                ctx.record("corruption", d, c, float(r[c]), 1, arch=r["arch"], note=f"clean-trained model {r['model']}")
    sec.text += text
    sec.items.append(ctx.sink.table(ctx.stem(step, d, "models"), table, f"Per-corruption accuracy per model ({d.sweep})"))
    if len(table) > 20:
        sec.items.append(ctx.sink.table(ctx.stem(step, d, "summary"), _shown(table, ["arch"], [c for c in value_cols if c != "clean"]),
                                        f"Per-architecture summary over models ({d.sweep})"))
    return [sec]


def pixel_step(ctx: Ctx, step: PixelStep, d: Design) -> list[Section]:
    """002 eq. 7: Pi = w / (p r a) per model and level of the pixel suite (:mod:`.pixel`),
    and accuracy and Pi against the number of modified pixels (002 Fig. 8)."""
    models = _models(ctx, d)
    m = attach(ctx.metrics(d, [step.suite]), models, ["model", "arch"])
    p = m["level"] / step.image_pixels if step.level_unit == "pixels" else m["level"]
    if step.w == "error":
        w = 1.0 - m["accuracy"]
    else:
        cm = ctx.metrics(d, [step.clean_suite])
        clean_acc = cm.groupby("tidx")["accuracy"].mean()
        w = (m["tidx"].map(clean_acc) - m["accuracy"]).clip(lower=0.0)
    df = m.assign(w=w.to_numpy(), p=p.to_numpy(), Pi=pixel_index(w, p, step.value_range, step.area))
    table = df[["model", "arch", "level", "accuracy", "w", "p", "Pi", "n"]].sort_values(["model", "level"])
    sec = Section(f"{d.sweep}: Pixel-index on {step.suite}", level=3)
    unit = f"p = level / {step.image_pixels} pixels" if step.level_unit == "pixels" else "p = level (a fraction of the pixels)"
    sec.text += [excluded_text(ctx.trials(d)),
                 f"Pi = w / (p r a) (002 eq. 7) with w = {'1 - accuracy' if step.w == 'error' else f'accuracy lost against {step.clean_suite}'}, "
                 f"{unit}, r = {step.value_range:g}, a = {step.area:g}; smaller Pi = more robust. Level 0 has no Pi."]
    sec.items.append(ctx.sink.table(ctx.stem(step, d, "models"), table, f"Pixel-index per model and level ({d.sweep})"))
    summ = df.groupby(["arch", "level"]).agg(accuracy=("accuracy", "mean"), Pi=("Pi", "mean"), models=("Pi", "size")).reset_index()
    for _, r in summ.iterrows():
        ctx.record("pixel_index", d, "Pi", float(r["Pi"]), int(r["models"]), arch=r["arch"], suite=step.suite, segment=f"level={fmt_level(r['level'])}")
    sec.items.append(ctx.sink.table(ctx.stem(step, d, "summary"), summ, f"Mean accuracy and Pi per architecture and level ({d.sweep})"))
    xlabel = "modified pixels per image" if step.level_unit == "pixels" else "fraction of modified pixels"
    sec.add(ctx.sink.figure(ctx.stem(step, d), lambda: plots.pixel_plot(df, "level", ctx.archs(d), f"{d.sweep}: {step.suite}", xlabel),
                            "Accuracy and Pixel-index against the number of modified pixels (mean over models; band: min-max)"))
    return [sec]


def overlap_step(ctx: Ctx, step: OverlapStep, d: Design) -> list[Section]:
    """001: overlapping score of every pair of corruptions, per architecture, from the
    clean model M and the models M_c trained with each corruption (:mod:`.corruption`)."""
    T = ctx.trials(d)
    ok = T[T["ok"]]
    names = list(step.corruptions)
    rob_rows, pair_rows = [], []
    for arch in ctx.archs(d):
        ga = ok[ok["arch"] == arch]
        trained = {"M": ga[d.clean(ga)]}
        for name, c in step.corruptions.items():
            at = np.isclose(ga[c.factor].to_numpy(float), c.level)
            others = d.series(ga, c.factor) if c.factor in d.factors else np.ones(len(ga), bool)
            trained[name] = ga[at & others]
        rob = {}
        for who, g in trained.items():
            acc_clean = g[f"acc_{step.clean_suite}"].mean()
            rob[who] = {n: robustness(g[f"acc_{c.suite}"].mean(), acc_clean) for n, c in step.corruptions.items()}
            rob_rows.append({"arch": arch, "model": who if who == "M" else f"M_{who}", "models": len(g), **rob[who]})
        for c1, c2 in itertools.combinations(names, 2):
            score = overlap_score(rob["M"], rob[c1], rob[c2], c1, c2)
            n = min(len(trained["M"]), len(trained[c1]), len(trained[c2]))
            why = "" if np.isfinite(score) else ("a model is missing" if n == 0 else "training on a corruption did not raise robustness to it")
            ctx.record("overlap", d, "overlap", score, n, factor=f"{c1}~{c2}", arch=arch, note=why)
            pair_rows.append({"arch": arch, "corruption 1": c1, "corruption 2": c2, "overlap": score, "n": n, "note": why})
    sec = Section(f"{d.sweep}: corruption overlapping score", level=3)
    desc = "; ".join(f"{n} = suite {c.suite}, trained with {c.factor}={fmt_level(c.level)}" for n, c in step.corruptions.items())
    sec.text += [excluded_text(T), f"Corruptions: {desc}. R(M, c) = accuracy on c / accuracy on {step.clean_suite}; "
                 "O(c1, c2) = max(0, ½[(R(M_c2,c1) - R(M,c1)) / (R(M_c1,c1) - R(M,c1)) + (R(M_c1,c2) - R(M,c2)) / (R(M_c2,c2) - R(M,c2))]) "
                 "(Laugros et al. 2021, cited in 001); n = the fewest models behind a term (seeds are averaged)."]
    sec.items.append(ctx.sink.table(ctx.stem(step, d, "pairs"), pd.DataFrame(pair_rows), f"Overlapping scores ({d.sweep})"))
    sec.items.append(ctx.sink.table(ctx.stem(step, d, "robustness"), pd.DataFrame(rob_rows), f"Relative robustness R(model, corruption) ({d.sweep})"))
    return [sec]
