"""000's single-factor steps: correlation tables and line plots (000 Tables 2, 4, 5; Figs.
2-5), segments (000 Table 3) and severity curves."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field, field_validator, model_validator

from .. import plots
from ..context import Ctx, attach, excluded_text
from ..load import Design, fmt_level
from ..options import Step, levels_list
from ..registry import register
from ..render import Section
from ..stats import ROMAN, band, correlation, describe, peak_level, segment_of


class Correlation(Step):
    """Spearman (and/or Pearson) r, p, mean and variance per factor x arch x suite (000
    Tables 2, 4, 5) and the accuracy-vs-level line plots (000 Figs. 2-5)."""

    type: Literal["correlation"]
    factors: list[str] | None = None
    methods: list[Literal["spearman", "pearson"]] = ["spearman"]
    plot: bool = True


class Segments(Step):
    """000 Table 3: split each factor's levels at the peak of a suite's accuracy (per
    architecture) or at fixed breakpoints, shared or per architecture (000 splits LeNet-5
    at 8.0 and AlexNet-8 at 7.0); r, p, mean, variance per segment."""

    type: Literal["segments"]
    factor: str
    peak_of: str | None = Field(None, description="suite whose mean accuracy peaks at the split")
    breakpoints: list[float] | dict[str, list[float]] | None = Field(
        None, description="segment k holds b[k-1] < level <= b[k]; a list for every architecture, or {arch: list}")
    methods: list[Literal["spearman", "pearson"]] = ["spearman"]

    @field_validator("breakpoints", mode="before")
    @classmethod
    def _list_or_mapping(cls, v):
        # checked here, not by pydantic's union, whose errors name the union's branches
        # (breakpoints.list[float]) instead of what is wrong
        if v is None or isinstance(v, list):
            return v if v is None else levels_list(v)
        if not isinstance(v, dict) or not v:
            raise ValueError("give a list of levels for every architecture ([8.0]) or a mapping architecture: levels "
                             "({lenet5: [8.0], alexnet8: [7.0]})")
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
                chk.fail(chk.path(i, "breakpoints"), f"no breakpoints for architecture {arch!r} of {d.folder} "
                         f"(the mapping names {', '.join(step.breakpoints)}); add {arch}: [levels]")


METHOD_NAMES = {"spearman": "Spearman", "pearson": "Pearson"}


def rows_text(d: Design, factor: str) -> str:
    if d.one_factor:
        base = {f: fmt_level(b) for f, b in d.baselines.items() if f != factor}
        at = ", ".join(f"{f}={b}" for f, b in base.items()) or "none"
        return (f"Rows: the trials of the {factor} series of a one_factor design (every other factor at its baseline: {at}; "
                "the all-baseline trial included). Each trial (architecture x level x seed) is one point.")
    return f"Rows: every trial of the {d.type} design (the correlation with {factor} is marginal over the other factors)."


def _stat_names(method: str) -> tuple[str, str]:
    """Spearman is the papers' r; a Pearson r next to it gets its own name."""
    if method == "spearman":
        return "r", "p"
    return "pearson_r", "pearson_p"


def _corr_cells(ctx: Ctx, d: Design, analysis: str, factor: str, arch: str, suite: str, x, y, n_all: int,
                methods: list[str], segment: str = "") -> dict:
    row: dict = {}
    for method in methods:
        c = correlation(x, y, method)
        rname, pname = _stat_names(method)
        label = "" if method == "spearman" else "Pearson "
        row.update({f"{label}r": c.r, f"{label}p": c.p, f"{label}band": band(c.r)})
        kw = dict(factor=factor, arch=arch, suite=suite, segment=segment, n_excluded=n_all - c.n, note=c.note)
        ctx.record(analysis, d, rname, c.r, c.n, band=band(c.r), **kw)
        ctx.record(analysis, d, pname, c.p, c.n, **kw)
        if c.note:
            row["note"] = c.note
    mean, var, n = describe(y, ctx.recipe.variance_ddof)
    kw = dict(factor=factor, arch=arch, suite=suite, segment=segment, n_excluded=n_all - n)
    ctx.record(analysis, d, "mean", mean, n, **kw)
    ctx.record(analysis, d, "variance", var, n, **kw)
    row.update({"mean": mean, "variance": var, "n": n, "n excluded": n_all - n})
    return row


def _notes_last(df: pd.DataFrame) -> pd.DataFrame:
    if "note" not in df:
        return df
    return df[[c for c in df.columns if c != "note"] + ["note"]].fillna({"note": ""})


def _named_text(ctx: Ctx, d: Design, suites: list[str]) -> str:
    named = [s for s in suites if ctx.suite_kind(d, s) == "named"]
    if not named:
        return ""
    return (f" A suite's accuracy is over all its images; for {', '.join(named)} that is the mean over its conditions "
            "(004's aggregate for corruptions, 003's MA for two-factor-69, conditions having equal n); per-condition results are in "
            "their own sections.")


@register(Correlation)
def correlation_step(ctx: Ctx, step: Correlation, d: Design) -> list[Section]:
    """000 Tables 2, 4, 5: r, p, band, mean and variance of accuracy per factor x arch x
    suite, and the Figs. 2-5 line plots. scipy computes r and p (see :mod:`.stats`)."""
    T, archs, suites = ctx.trials(d), ctx.archs(d), ctx.suites(d)
    factors = step.factors or list(d.factors)
    out = []
    for f in factors:
        G = T[d.series(T, f)] if f in d.factors else T
        rows = []
        for arch in archs:
            ga = G[G["arch"] == arch]
            ok = ga[ga["ok"]]
            for s in suites:
                y = ok[f"acc_{s}"].to_numpy(float)
                x = ok[f].to_numpy(float)
                n_all = len(ga)
                rows.append({"arch": arch, "suite": s, **_corr_cells(ctx, d, "correlation", f, arch, s, x, y, n_all, step.methods)})
        df = _notes_last(pd.DataFrame(rows))
        sec = Section(f"{d.sweep}: accuracy against {f}", level=3)
        methods = " and ".join(METHOD_NAMES[m] for m in step.methods)
        sec.text += [rows_text(d, f), excluded_text(G),
                     f"{methods} correlation of each suite's accuracy with the {f} level (scipy.stats; two-sided p); "
                     f"band per 000 §2.4; variance with ddof={ctx.recipe.variance_ddof}." + _named_text(ctx, d, suites)]
        sec.items.append(ctx.sink.table(ctx.stem(step, d, f), df, f"Correlation of accuracy with {f} ({d.sweep})"))
        if step.plot and G["ok"].any():
            sec.add(ctx.sink.figure(ctx.stem(step, d, f), lambda: plots.accuracy_lines(G[G["ok"]], f, suites, archs, f"{d.sweep}: accuracy against {f}",
                                                                                       options=d.options.get(f)),
                                    f"Accuracy on every suite and on the training set against {f} (mean of the trials at each level; band: their min-max)"))
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
    return f"per architecture: {per} {rule}" + (f"; breakpoints given for {', '.join(unused)} not used (no such trials here)" if unused else "")


@register(Segments, _check_segments)
def segments_step(ctx: Ctx, step: Segments, d: Design) -> list[Section]:
    """000 Table 3: the levels split at the peak of ``peak_of``'s mean accuracy (per
    architecture; the peak closes Segment I) or at fixed breakpoints (shared, or per
    architecture); r, p, mean and variance per segment x suite."""
    T, archs, suites = ctx.trials(d), ctx.archs(d), ctx.suites(d)
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
                cells = _corr_cells(ctx, d, "segments", f, arch, s, x, y, len(part), step.methods, segment=name)
                rows.append({"arch": arch, "segment": name, "levels": span, "suite": s, **cells})
    df = _notes_last(pd.DataFrame(rows))
    sec = Section(f"{d.sweep}: {f} in segments" + (f" ({step.id})" if step.id else ""), level=3)
    sec.text += [rows_text(d, f), excluded_text(G), f"Levels split {_split_text(step, archs)}; Spearman r and p, mean and variance per segment (000 Table 3)."]
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
        sec.text.append(f"Suites of named conditions ({', '.join(named)}) are not drawn against their level here (several conditions "
                        "share a level); see their per-condition sections (corruption, pixel_index, mcv).")
    if not order or not ctx.sink.plots:
        sec.text.append("No suite has one perturbation at more than one level; nothing to plot." if not order else "Plots are off.")
        return [sec]
    for f in step.factors or list(d.factors):
        G = T[d.series(T, f) & T["ok"].to_numpy()] if f in d.factors else T[T["ok"]]
        # group on one small integer per (arch, level) so millions of metric rows group fast
        code, keys = pd.factorize(pd.MultiIndex.from_arrays([G["arch"], G[f]]))
        m = attach(M, G.assign(_code=code), ["_code"])
        agg = m.groupby(["_code", "suite", "level"], observed=True)["accuracy"].agg(["mean", "min", "max", "count"]).reset_index()
        agg["arch"] = keys.get_level_values(0)[agg["_code"]]
        agg[f] = keys.get_level_values(1)[agg["_code"]]
        shown = len(plots.shown_levels(G[f]))
        some = "" if shown == G[f].nunique() else f" ({shown} of {G[f].nunique()} levels, evenly spread)"
        sec.add(ctx.sink.figure(ctx.stem(step, d, f), lambda: plots.severity_lines(agg, f, order, archs, f"{d.sweep}: accuracy by suite level, per {f} training level"),
                                f"Accuracy on each suite against the suite's level, one line per {f} training level{some}"))
    sec.text.append("Lines: mean of the trials at each training level (seeds); band: their min-max.")
    return [sec]
