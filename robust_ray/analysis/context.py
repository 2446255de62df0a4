"""What every analysis step sees: the results, its recipe, the output sink, and the
long-form statistics table every step appends to (``tables/statistics.csv``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..results import ACHIEVED_PREFIX
from .conditions import name_003
from .load import Design, Results, fmt_level, with_achieved_levels
from .render import Sink

if TYPE_CHECKING:  # recipes imports the steps, which import this module
    from .recipes import Recipe

STAT_COLUMNS = [
    "recipe",
    "step",
    "analysis",
    "sweep",
    "factor",
    "arch",
    "suite",
    "segment",
    "level",
    "statistic",
    "value",
    "ci_low",
    "ci_high",
    "n",
    "n_excluded",
    "p_method",
    "strength",
    "note",
]


@dataclass
class Ctx:
    res: Results
    recipe: Recipe
    sink: Sink
    stats: list[dict] = field(default_factory=list)
    cache: dict = field(default_factory=dict)
    step: str = ""  # id (or type) of the step running now, recorded with its statistics
    summary: list[dict] = field(default_factory=list)  # the report's leading table (correlation steps)
    reference: pd.DataFrame | None = None  # the recipe's published values (reference tables), if any
    comparison: pd.DataFrame | None = None  # reference.compare's table, once the steps have run

    def published(self, analysis: str, statistic: str, factor: str, arch: str, suite: str, segment: str = "") -> float:
        """The published value of one statistic in the recipe's reference tables (NaN: none)."""
        r = self.reference
        if r is None or r.empty:
            return np.nan
        hit = r[
            (r["analysis"] == analysis)
            & (r["statistic"] == statistic)
            & (r["factor"] == factor)
            & (r["arch"] == arch)
            & (r["suite"] == suite)
            & (r["segment"] == segment)
        ]
        return float(hit["value"].iloc[0]) if len(hit) else np.nan

    def designs(self) -> list[Design]:
        if not self.recipe.sweeps:
            return list(self.res.designs.values())
        by_name = {d.sweep.split("@")[0]: d for d in self.res.designs.values()}
        return [self.res.designs.get(s) or by_name[s] for s in self.recipe.sweeps]

    def trials(self, d: Design, levels: str = "nominal") -> pd.DataFrame:
        """``d``'s trials; ``levels="achieved"``: factor columns hold the levels measured on
        the composed training sets (:func:`..load.with_achieved_levels`)."""
        t = self.res.trials
        t = t[t["sweep"] == d.sweep]
        if self.recipe.architectures:
            t = t[t["arch"].isin(self.recipe.architectures)]
        return with_achieved_levels(t) if levels == "achieved" else t

    def metrics(self, d: Design, suites: list[str] | None = None) -> pd.DataFrame:
        m = self.res.metrics
        m = m[m["sweep"] == d.sweep]
        if suites is not None:
            m = m[m["suite"].isin(suites)]
        return m

    def archs(self, d: Design) -> list[str]:
        present = set(self.trials(d)["arch"].unique())
        order = self.recipe.architectures or d.archs
        return [a for a in order if a in present] + sorted(present - set(order))

    def suites(self, d: Design) -> list[str]:
        cols = set(self.res.trials.columns)
        order = self.recipe.suites or d.suites
        return [s for s in order if f"acc_{s}" in cols]

    def conditions(self, d: Design, suite: str) -> pd.DataFrame:
        """The conditions of ``suite`` in ``d``'s sweep, in suite order (:mod:`.conditions`)."""
        c = self.res.conditions
        if c.empty:
            return c
        return c[(c["sweep"] == d.sweep) & (c["suite"] == suite)].reset_index(drop=True)

    def suite_kind(self, d: Design, suite: str) -> str:
        """``clean``, ``levels`` or ``named`` (see :mod:`.conditions`); ``none`` without metrics."""
        c = self.conditions(d, suite)
        return str(c["kind"].iloc[0]) if len(c) else "none"

    def suites_of_type(self, d: Design, stype: str) -> list[str]:
        """The sweep's suites of a registered type (``corruptions``, ``pixel``...), in order."""
        order = self.recipe.suites or d.suites or sorted(d.suite_types)
        return [s for s in order if d.suite_types.get(s, s) == stype and self.suite_kind(d, s) != "none"]

    def clean_suite(self, d: Design) -> str | None:
        """The sweep's clean test set (mnist-test / clean), if it has one."""
        for s in self.recipe.suites or d.suites:
            if self.suite_kind(d, s) == "clean" and f"acc_{s}" in self.res.trials:
                return s
        return None

    def stem(self, step, d: Design, *parts: str) -> str:
        """File-name stem: recipe, sweep, step id (or type), then ``parts``."""
        return "__".join([self.recipe.name, d.sweep, step.id or step.type, *parts])

    def record(
        self,
        analysis: str,
        d: Design,
        statistic: str,
        value: float,
        n: int,
        n_excluded: int = 0,
        factor: str = "",
        arch: str = "",
        suite: str = "",
        segment: str = "",
        strength: str = "",
        note: str = "",
        ci: tuple[float, float] = (np.nan, np.nan),
        p_method: str = "",
        level: float = np.nan,
    ) -> None:
        """One row of statistics.csv: ``ci`` its 95 % interval (how, in ``note``), ``p_method``
        how a p was computed, ``strength`` the 000 §2.4 band of an r or R."""
        self.stats.append(
            dict(
                recipe=self.recipe.name,
                step=self.step or analysis,
                analysis=analysis,
                sweep=d.sweep,
                factor=factor,
                arch=arch,
                suite=suite,
                segment=segment,
                level=level,
                statistic=statistic,
                value=value,
                ci_low=ci[0],
                ci_high=ci[1],
                n=n,
                n_excluded=n_excluded,
                p_method=p_method,
                strength=strength,
                note=note,
            )
        )

    def n_images(self, d: Design) -> pd.DataFrame:
        """Test images behind each ok trial's accuracy on each suite (index ``tidx``, one
        column per suite): the sum of ``n`` over the suite's conditions in metrics.parquet."""
        key = ("n_images", d.sweep)
        if key not in self.cache:
            m = self.metrics(d)
            self.cache[key] = (
                m.groupby(["tidx", "suite"], observed=True)["n"].sum().unstack("suite") if len(m) else pd.DataFrame()
            )
        return self.cache[key]

    def stats_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.stats, columns=STAT_COLUMNS)


def attach(metrics: pd.DataFrame, trials: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    """``metrics`` rows of the given ``trials`` (a subset of ``Results.trials``, its index
    intact) with trial columns ``cols`` added, looked up through ``tidx``: an integer
    index lookup, not a merge, since metrics can hold millions of rows."""
    pos = trials.index.get_indexer(metrics["tidx"].to_numpy())
    keep = pos >= 0
    m = metrics[keep]
    pos = pos[keep]
    return m.assign(**{c: trials[c].to_numpy()[pos] for c in cols})


def model_labels(trials: pd.DataFrame, factors: list[str]) -> pd.Series:
    """A readable name per trial: arch, the factor levels, and the seed when seeds vary."""
    seeds = trials["seed"].nunique() > 1
    parts = [trials["arch"].astype(str)]
    for f in factors:
        names = {v: fmt_level(v) for v in trials[f].unique()}  # a few levels, many trials
        parts.append(" " + f + "=" + trials[f].map(names))
    if seeds:
        parts.append(" seed " + trials["seed"].astype(str))
    out = parts[0]
    for p in parts[1:]:
        out = out + p
    return out


def training_labels(trials: pd.DataFrame, d: Design) -> pd.Series:
    """The training set of each trial in a few words: ``clean`` when every factor is at
    its baseline, else the factors that are not, in 003's notation where the factor is one of
    its perturbations (``SP0.1GA0.1``, ``RL30``) and as ``factor=level`` otherwise."""
    factors = list(d.factors)
    if not factors:
        return pd.Series("clean", index=trials.index)
    at_base = pd.DataFrame({f: d.at_baseline(trials, f) for f in factors}, index=trials.index)
    key = trials[factors].astype(float).round(9).where(~at_base).fillna(np.inf)  # inf: at baseline
    if key.empty:
        return pd.Series([], index=trials.index, dtype=object)
    codes, uniq = pd.factorize(pd.MultiIndex.from_frame(key))  # a few training sets, many trials
    names = []
    for row in uniq:
        parts = [
            name_003(f, v, d.options.get(f)) or f"{f}={fmt_level(v)}" for f, v in zip(factors, row) if np.isfinite(v)
        ]
        names.append(" + ".join(parts) or "clean")
    return pd.Series(np.asarray(names, dtype=object)[codes], index=trials.index, dtype=object)


def levels_text(trials: pd.DataFrame, factors: list[str], levels: str) -> str:
    """What x is, where a factor's achieved level can differ from its nominal one."""
    measured = [f for f in factors if ACHIEVED_PREFIX + f in trials.columns]
    if not measured:
        return ""
    names = ", ".join(measured)
    if levels == "achieved":
        return (
            f"x for {names}: the level measured on each composed training set (trials.parquet "
            f"{', '.join(ACHIEVED_PREFIX + f for f in measured)}; `levels: achieved`), not the planned one."
        )
    return (
        f"x for {names}: the planned (nominal) level, as 000 regresses; the level measured on the composed training "
        f"set (after augment copies and label errors) is in trials.parquet {', '.join(ACHIEVED_PREFIX + f for f in measured)}, "
        "and `levels: achieved` on this step regresses on it."
    )


def excluded_text(trials: pd.DataFrame) -> str:
    bad = trials[~trials["ok"]]
    if bad.empty:
        return "No trial was excluded."
    counts = ", ".join(f"{k}: {v}" for k, v in bad["status"].astype(str).value_counts().items())
    return f"{len(bad)} trial(s) excluded (status ≠ ok; {counts}); the n excluded columns count them per group."
