"""000's single-factor steps: correlation tables and line plots (000 Tables 2, 4, 5; Figs.
2-5), segments (000 Table 3) and severity curves."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field, field_validator, model_validator

from .. import plots
from ..context import Ctx, attach, excluded_text, levels_text
from ..load import Design, fmt_level
from ..options import Step, levels_list
from ..registry import register
from ..render import Section, ci_text, significant
from ..replicates import level_table
from ..stats import ROMAN, STRENGTH, band, correlation, describe, group_intervals, mean_interval, peak_level, segment_of


class Correlation(Step):
    """Spearman (and/or Pearson) r, p, mean and variance per factor x arch x suite (000
    Tables 2, 4, 5) and the accuracy-vs-level line plots (000 Figs. 2-5)."""

    type: Literal["correlation"]
    factors: list[str] | None = None
    methods: list[Literal["spearman", "pearson"]] = ["spearman"]
    plot: bool = True
    levels: Literal["nominal", "achieved"] = Field(
        "nominal", description="x: the planned level (000) or the level measured on the composed training set"
    )


class Segments(Step):
    """000 Table 3: split each factor's levels at the peak of a suite's accuracy (per
    architecture) or at fixed breakpoints, shared or per architecture (000 splits LeNet-5
    at 8.0 and AlexNet-8 at 7.0); r, p, mean, variance per segment."""

    type: Literal["segments"]
    factor: str
    peak_of: str | None = Field(None, description="suite whose mean accuracy peaks at the split")
    breakpoints: list[float] | dict[str, list[float]] | None = Field(
        None, description="segment k holds b[k-1] < level <= b[k]; a list for every architecture, or {arch: list}"
    )
    methods: list[Literal["spearman", "pearson"]] = ["spearman"]
    levels: Literal["nominal", "achieved"] = Field(
        "nominal", description="x: the planned level (000) or the level measured on the composed training set"
    )

    @field_validator("breakpoints", mode="before")
    @classmethod
    def _list_or_mapping(cls, v):
        # checked here, not by pydantic's union, whose errors name the union's branches
        # (breakpoints.list[float]) instead of what is wrong
        if v is None or isinstance(v, list):
            return v if v is None else levels_list(v)
        if not isinstance(v, dict) or not v:
            raise ValueError(
                "give a list of levels for every architecture ([8.0]) or a mapping architecture: levels "
                "({lenet5: [8.0], alexnet8: [7.0]})"
            )
        for arch in v:
            if not isinstance(arch, str):
                raise ValueError(f"architecture {arch!r} is not a name (mapping keys are architectures, e.g. lenet5)")  # noqa: TRY004 (as above)
        return {arch: levels_list(levels, arch) for arch, levels in v.items()}

    @model_validator(mode="after")
    def _one_split(self):
        if (self.peak_of is None) == (self.breakpoints is None):
            raise ValueError("give exactly one of peak_of (a suite) or breakpoints (levels)")
        return self

    def cuts(self, arch: str) -> list[float] | None:
        """The breakpoints of ``arch`` (None: the mapping has none for it)."""
        if isinstance(self.breakpoints, dict):
            return self.breakpoints.get(arch)
        return self.breakpoints


class Severity(Step):
    """Accuracy against each suite's own level, one line per training level."""

    type: Literal["severity"]
    factors: list[str] | None = None


def _check_segments(step: Segments, i: int, chk) -> None:
    """Every analysed architecture needs its breakpoints. Names the data lacks are not an
    error: a mapping may carry the paper's architectures while a run trains only some of
    them (the segments section lists the unused ones); a typo shows here all the same, as
    the architecture it was meant for then has none."""
    chk.need_column(step.factor, chk.path(i, "factor"), "factor")
    if step.peak_of:
        chk.need_suite(step.peak_of, chk.path(i, "peak_of"))
    if not isinstance(step.breakpoints, dict):
        return
    for d in chk.targets:
        t = chk.trials[chk.trials["sweep"] == d.sweep]
        archs = chk.recipe.architectures
        present = t["arch"].unique() if not archs else [a for a in archs if (t["arch"] == a).any()]
        for arch in sorted(present):
            if arch not in step.breakpoints:
                chk.fail(
                    chk.path(i, "breakpoints"),
                    f"no breakpoints for architecture {arch!r} of {d.folder} "
                    f"(the mapping names {', '.join(step.breakpoints)}); add {arch}: [levels]",
                )


METHOD_NAMES = {"spearman": "Spearman", "pearson": "Pearson"}


def rows_text(d: Design, factor: str) -> str:
    if d.one_factor:
        base = {f: fmt_level(b) for f, b in d.baselines.items() if f != factor}
        at = ", ".join(f"{f}={b}" for f, b in base.items()) or "none"
        return (
            f"Rows: the trials of the {factor} series of a one_factor design (every other factor at its baseline: {at}; "
            "the all-baseline trial included). Each trial (architecture x level x seed) is one point."
        )
    return (
        f"Rows: every trial of the {d.type} design (the correlation with {factor} is marginal over the other factors)."
    )


def _stat_names(method: str) -> tuple[str, str]:
    """Spearman is the papers' r; a Pearson r next to it gets its own name."""
    if method == "spearman":
        return "r", "p"
    return "pearson_r", "pearson_p"


def design_points(ok: pd.DataFrame, d: Design) -> np.ndarray:
    """A code per trial for its design point (every factor's level): the trials sharing one
    are replicates (seeds), which the bootstrap resamples."""
    factors = [f for f in d.factors if f in ok]
    if not factors or ok.empty:
        return np.zeros(len(ok), int)
    return pd.factorize(pd.MultiIndex.from_frame(ok[factors].astype(float).round(9)))[0]


def _corr_cells(
    ctx: Ctx,
    d: Design,
    analysis: str,
    factor: str,
    arch: str,
    suite: str,
    x,
    y,
    n_all: int,
    methods: list[str],
    segment: str = "",
    groups=None,
) -> dict:
    """r with its interval, p (exact for n <= 10), strength and the significance verdict per
    method, then mean (t interval) and variance; every number recorded in statistics.csv."""
    row: dict = {}
    alpha = ctx.recipe.alpha
    for method in methods:
        c = correlation(x, y, method, groups)
        rname, pname = _stat_names(method)
        label = "" if method == "spearman" else "Pearson "
        row.update(
            {
                f"{label}r": c.r,
                f"{label}r 95% CI": ci_text(c.ci_low, c.ci_high),
                f"{label}p": c.p,
                f"{label}p method": c.p_method,
                f"{label}{STRENGTH}": band(c.r),
                f"{label}significant (p < {alpha:g})": significant(c.p, alpha),
            }
        )
        kw = dict(factor=factor, arch=arch, suite=suite, segment=segment, n_excluded=n_all - c.n)
        ctx.record(
            analysis,
            d,
            rname,
            c.r,
            c.n,
            strength=band(c.r),
            ci=(c.ci_low, c.ci_high),
            note="; ".join(filter(None, [c.note, c.ci_method])),
            **kw,
        )
        ctx.record(analysis, d, pname, c.p, c.n, p_method=c.p_method, note=c.note, **kw)
        if c.note:
            row["note"] = c.note
        if method == "spearman":
            ctx.cache["last_spearman"] = c  # the summary's r, without computing it twice
    mean, sd, lo, hi, n = mean_interval(y)
    _, var, _ = describe(y, ctx.recipe.variance_ddof)
    kw = dict(factor=factor, arch=arch, suite=suite, segment=segment, n_excluded=n_all - n)
    ctx.record(analysis, d, "mean", mean, n, ci=(lo, hi), note="t interval over the points", **kw)
    ctx.record(analysis, d, "variance", var, n, **kw)
    row.update({"mean": mean, "mean 95% CI": ci_text(lo, hi), "variance": var, "n": n, "n excluded": n_all - n})
    return row


def _notes_last(df: pd.DataFrame) -> pd.DataFrame:
    if "note" not in df:
        return df
    return df[[c for c in df.columns if c != "note"] + ["note"]].fillna({"note": ""})


def _named_text(ctx: Ctx, d: Design, suites: list[str]) -> str:
    named = [s for s in suites if ctx.suite_kind(d, s) == "named"]
    if not named:
        return ""
    return (
        f" A suite's accuracy is over all its images; for {', '.join(named)} that is the mean over its conditions "
        "(004's aggregate for corruptions, 003's MA for two-factor-69, conditions having equal n); per-condition results are in "
        "their own sections."
    )


def _record_levels(ctx: Ctx, d: Design, f: str, levels: pd.DataFrame) -> None:
    for r in levels.itertuples(index=False):
        ctx.record(
            "correlation",
            d,
            "accuracy",
            r.mean,
            int(r.n_seeds),
            factor=f,
            arch=r.arch,
            suite=r.suite,
            level=float(r.level),
            ci=(r.ci_low, r.ci_high),
            note=f"mean over {r.n_seeds} seed(s); interval: {r.interval}",
        )


def _summarise(ctx: Ctx, d: Design, f: str, levels: pd.DataFrame, corr: dict) -> None:
    """The report's summary rows (:mod:`..summary`): accuracy at the baseline and at the
    highest level, the best level, and r, for each architecture x suite."""
    base = d.baselines.get(f)
    for (arch, s), g in levels.groupby(["arch", "suite"], sort=False):
        g = g.sort_values("level")
        at_base = g[np.isclose(g["level"], base)] if base is not None else g.head(1)
        at_base = at_base if len(at_base) else g.head(1)
        top, best = g.iloc[-1], g.loc[g["mean"].idxmax()]
        c = corr.get((arch, s), {})
        ctx.summary.append(
            {
                "sweep": d.sweep,
                "factor": f,
                "arch": arch,
                "suite": s,
                "baseline": float(at_base["level"].iloc[0]),
                "acc_baseline": float(at_base["mean"].iloc[0]),
                "acc_baseline_ci": (float(at_base["ci_low"].iloc[0]), float(at_base["ci_high"].iloc[0])),
                "highest": float(top["level"]),
                "acc_highest": float(top["mean"]),
                "acc_highest_ci": (float(top["ci_low"]), float(top["ci_high"])),
                "best_level": float(best["level"]),
                "n_seeds": int(g["n_seeds"].max()),
                **c,
            }
        )


@register(Correlation)
def correlation_step(ctx: Ctx, step: Correlation, d: Design) -> list[Section]:
    """000 Tables 2, 4, 5: r (95 % interval), p (exact for n <= 10), strength, mean and
    variance of accuracy per factor x arch x suite; accuracy per level over seeds (mean, sd,
    n_seeds, 95 % interval) and the Figs. 2-5 line plots with 95 % bands. scipy computes r
    and p (see :mod:`..stats`)."""
    T, archs, suites = ctx.trials(d, step.levels), ctx.archs(d), ctx.suites(d)
    factors = step.factors or list(d.factors)
    out = []
    for f in factors:
        G = T[d.series(T, f)] if f in d.factors else T
        rows, corr = [], {}
        for arch in archs:
            ga = G[G["arch"] == arch]
            ok = ga[ga["ok"]]
            groups = design_points(ok, d)
            for s in suites:
                y = ok[f"acc_{s}"].to_numpy(float)
                x = ok[f].to_numpy(float)
                n_all = len(ga)
                cells = _corr_cells(ctx, d, "correlation", f, arch, s, x, y, n_all, step.methods, groups=groups)
                rows.append({"arch": arch, "suite": s, **cells})
                if "r" in cells:
                    c = ctx.cache.pop("last_spearman")
                    corr[(arch, s)] = {"r": c.r, "r_ci": (c.ci_low, c.ci_high), "p": c.p, "p_method": c.p_method}
        df = _notes_last(pd.DataFrame(rows))
        levels = level_table(G[G["ok"]], f, suites, archs, ctx.n_images(d))
        _record_levels(ctx, d, f, levels)
        _summarise(ctx, d, f, levels, corr)
        sec = Section(f"{d.sweep}: accuracy against {f}", level=3)
        methods = " and ".join(METHOD_NAMES[m] for m in step.methods)
        sec.text += [
            rows_text(d, f),
            excluded_text(G),
            f"{methods} correlation of each suite's accuracy with the {f} level (scipy.stats); two-sided p exact over every "
            "pairing for n <= 10, else the t approximation; 95 % interval of r by bootstrap over seeds where a level has several, "
            f"else Fisher's z; {STRENGTH} is 000's band of |r|, not a test; significant means p < alpha = {ctx.recipe.alpha:g}; "
            f"variance with ddof={ctx.recipe.variance_ddof}." + _named_text(ctx, d, suites),
        ]
        sec.text += [t for t in [levels_text(G, [f], step.levels)] if t]
        sec.items.append(ctx.sink.table(ctx.stem(step, d, f), df, f"Correlation of accuracy with {f} ({d.sweep})"))
        shown = levels.assign(**{"95% CI": [ci_text(a, b) for a, b in zip(levels["ci_low"], levels["ci_high"])]}).drop(
            columns=["ci_low", "ci_high"]
        )
        sec.items.append(
            ctx.sink.table(
                ctx.stem(step, d, f, "levels"),
                shown.rename(columns={"level": f, "n_seeds": "n seeds"}),
                f"Accuracy per level over seeds: mean, sd, n seeds and 95 % interval ({d.sweep})",
            )
        )
        if step.plot and G["ok"].any():
            published = {
                (a, s): v
                for a in archs
                for s in suites
                if np.isfinite(v := ctx.published("correlation", "mean", f, a, s))
            }
            sec.add(
                ctx.sink.figure(
                    ctx.stem(step, d, f),
                    lambda: plots.accuracy_lines(
                        G[G["ok"]],
                        f,
                        suites,
                        archs,
                        f"{d.sweep}: accuracy against {f}",
                        options=d.options.get(f),
                        levels=levels,
                        published=published,
                    ),
                    f"Accuracy on every suite and on the training set against {f} (mean over seeds at each level; band: 95 % "
                    "interval, t over seeds or Wilson on the test images of a single trial)"
                    + ("; dotted: the paper's mean accuracy over the levels" if published else ""),
                )
            )
        out.append(sec)
    return out


def _split_text(step: Segments, archs: list[str]) -> str:
    if step.peak_of:
        return f"at the peak of {step.peak_of} accuracy (per architecture; the peak level closes Segment I)"
    rule = "(segment k: b[k-1] < level <= b[k])"
    if not isinstance(step.breakpoints, dict):
        return f"at the breakpoints {', '.join(fmt_level(b) for b in step.breakpoints)} {rule}"
    per = "; ".join(f"{a} at {', '.join(fmt_level(b) for b in step.breakpoints[a]) or 'none'}" for a in archs)
    unused = [a for a in step.breakpoints if a not in archs]
    return f"per architecture: {per} {rule}" + (
        f"; breakpoints given for {', '.join(unused)} not used (no such trials here)" if unused else ""
    )


@register(Segments, _check_segments)
def segments_step(ctx: Ctx, step: Segments, d: Design) -> list[Section]:
    """000 Table 3: the levels split at the peak of ``peak_of``'s mean accuracy (per
    architecture; the peak closes Segment I) or at fixed breakpoints (shared, or per
    architecture); r, p, mean and variance per segment x suite."""
    T, archs, suites = ctx.trials(d, step.levels), ctx.archs(d), ctx.suites(d)
    f = step.factor
    G = T[d.series(T, f)] if f in d.factors else T
    rows = []
    for arch in archs:
        ga = G[G["arch"] == arch]
        ok = ga[ga["ok"]]
        if step.peak_of:
            peak = peak_level(ok[f], ok[f"acc_{step.peak_of}"])
            cuts = [peak] if np.isfinite(peak) else []
        else:
            cuts = list(step.cuts(arch))  # check_recipe made sure every analysed arch has some
        seg_all = segment_of(ga[f].to_numpy(float), cuts)
        for k in range(len(cuts) + 1):
            in_seg = seg_all == k
            part, part_ok = ga[in_seg], ga[in_seg & ga["ok"].to_numpy()]
            lv = part_ok[f]
            span = f"[{fmt_level(lv.min())}, {fmt_level(lv.max())}]" if len(lv) else "empty"
            name = ROMAN[k] if k < len(ROMAN) else str(k + 1)
            for s in suites:
                y, x = part_ok[f"acc_{s}"].to_numpy(float), part_ok[f].to_numpy(float)
                cells = _corr_cells(
                    ctx,
                    d,
                    "segments",
                    f,
                    arch,
                    s,
                    x,
                    y,
                    len(part),
                    step.methods,
                    segment=name,
                    groups=design_points(part_ok, d),
                )
                rows.append({"arch": arch, "segment": name, "levels": span, "suite": s, **cells})
    df = _notes_last(pd.DataFrame(rows))
    sec = Section(f"{d.sweep}: {f} in segments" + (f" ({step.id})" if step.id else ""), level=3)
    sec.text += [
        rows_text(d, f),
        excluded_text(G),
        f"Levels split {_split_text(step, archs)}; Spearman r and p, mean and variance per segment (000 Table 3).",
    ]
    sec.text += [t for t in [levels_text(G, [f], step.levels)] if t]
    sec.items.append(ctx.sink.table(ctx.stem(step, d, f), df, f"Segmented analysis of {f} ({d.sweep})"))
    return [sec]


@register(Severity, needs_metrics=True)
def severity_step(ctx: Ctx, step: Severity, d: Design) -> list[Section]:
    """Accuracy against each suite's own level (its severity), one line per training
    level: how training on a perturbation moves the whole robustness curve."""
    T, archs = ctx.trials(d), ctx.archs(d)
    M = ctx.metrics(d, ctx.suites(d) if ctx.recipe.suites else None)
    present = set(M["suite"].astype(str).unique())
    candidates = [s for s in (ctx.recipe.suites or d.suites) if s in present] + sorted(present - set(d.suites))
    # level suites only: where conditions share a level (corruptions, pixel) a curve over the
    # level would average different conditions; those have their own per-condition sections
    multi = [s for s, n in M.groupby("suite", observed=True)["level"].nunique().items() if n > 1]
    order = [s for s in candidates if s in multi and ctx.suite_kind(d, s) == "levels"]
    named = [s for s in candidates if ctx.suite_kind(d, s) == "named"]
    sec = Section(f"{d.sweep}: robustness curves", level=3)
    if named:
        sec.text.append(
            f"Suites of named conditions ({', '.join(named)}) are not drawn against their level here (several conditions "
            "share a level); see their per-condition sections (corruption, pixel_index, mcv)."
        )
    if not order or not ctx.sink.plots:
        sec.text.append(
            "No suite has one perturbation at more than one level; nothing to plot." if not order else "Plots are off."
        )
        return [sec]
    for f in step.factors or list(d.factors):
        G = T[d.series(T, f) & T["ok"].to_numpy()] if f in d.factors else T[T["ok"]]
        # group on one small integer per (arch, level) so millions of metric rows group fast
        code, keys = pd.factorize(pd.MultiIndex.from_arrays([G["arch"], G[f]]))
        m = attach(M, G.assign(_code=code), ["_code"])
        agg = group_intervals(m, ["_code", "suite", "level"], "accuracy").reset_index()
        agg["arch"] = keys.get_level_values(0)[agg["_code"]]
        agg[f] = keys.get_level_values(1)[agg["_code"]]
        shown = len(plots.shown_levels(G[f]))
        some = "" if shown == G[f].nunique() else f" ({shown} of {G[f].nunique()} levels, evenly spread)"
        sec.add(
            ctx.sink.figure(
                ctx.stem(step, d, f),
                lambda: plots.severity_lines(
                    agg, f, order, archs, f"{d.sweep}: accuracy by suite level, per {f} training level"
                ),
                f"Accuracy on each suite against the suite's level, one line per {f} training level{some}",
            )
        )
    sec.text.append("Lines: mean of the trials at each training level (seeds); band: the 95 % t interval over seeds.")
    return [sec]
