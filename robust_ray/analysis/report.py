"""``robust-ray analyze``: results folder(s) -> tables (CSV), plots (PNG), report (MD + HTML).

Everything the user gave is validated first (results files, recipes, reference tables);
the report is then built in a hidden temporary folder next to the output and renamed into
place at the end, so a failure never leaves a half-written report (an older report in the
output folder stays until the new one is complete).
"""

from __future__ import annotations

import datetime
import glob
import os
import shutil
import uuid
from pathlib import Path

import pandas as pd

from .. import __version__
from ..errors import UserError
from .context import Ctx
from .load import Results, fmt_level, load_results
from .recipes import Recipe, check_recipe, default_recipe, load_recipe
from .reference import compare, load_reference
from .registry import STEPS
from .render import Banner, Section, Sink, html_report, markdown
from .summary import summary_table

MARK = "report.md"  # what makes a folder a robust_ray analysis folder (safe to replace)


def default_output(where: str) -> Path:
    p = Path(where)
    if any(c in where for c in "*?["):
        p = Path(os.path.commonpath([str(Path(x).parent) for x in glob.glob(where)] or ["."]))
    elif p.is_file():
        p = p.parent
    return p / "analysis"


def _check_output(out: Path) -> None:
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MARK).is_file())):
        raise UserError(f"{out}: exists and is not a robust_ray analysis folder; choose another --output")


def _overview(res: Results, recipes: list[Recipe]) -> list[Section]:
    import scipy
    import statsmodels

    head = Section("Inputs and paths")
    head.text.append("- " + "\n- ".join(f"`{f}`" for f in res.files))
    for d in res.designs.values():
        t = res.trials[res.trials["sweep"] == d.sweep]
        status = ", ".join(f"{k} {v}" for k, v in t["status"].astype(str).value_counts().items())
        factors = (
            "; ".join(
                f"{f}: levels {', '.join(fmt_level(v) for v in lv)} (baseline {fmt_level(d.baselines.get(f))})"
                for f, lv in d.factors.items()
            )
            or "none"
        )
        head.text.append(
            f"**{d.sweep}** ({d.folder}): design `{d.type}`; {len(t)} trials ({status}); "
            f"architectures {', '.join(d.archs)}; suites {', '.join(d.suites)}; factors: {factors}."
        )
    head.text += [f"Note: {n}" for n in res.notes if not n.startswith("partial: ")]
    head.text.append(
        f"Recipes: {', '.join(f'`{r.name}`' + (f' ({r.file})' if r.file else '') for r in recipes)}. "
        f"robust_ray {__version__}, scipy {scipy.__version__}, statsmodels {statsmodels.__version__}; "
        f"written {datetime.datetime.now().isoformat(timespec='seconds')}."
    )
    head.text.append(
        "Trials whose status is not `ok` are left out of every statistic and counted as *n excluded* "
        "(with trials that lack the accuracy in question). Every table states the n behind each statistic."
    )
    return [head]


def _suites(res: Results, sink: Sink) -> list[Section]:
    """What each suite is (suites.json's words: PGD-L∞ eps 0.1, 0.2, 0.3, 10 steps, 1000
    images), so a reader need not know the keys; with its conditions and rows."""
    rows = []
    for d in res.designs.values():
        c = res.conditions[res.conditions["sweep"] == d.sweep] if not res.conditions.empty else res.conditions
        m = res.metrics[res.metrics["sweep"] == d.sweep]
        for key in d.suites:
            rows.append({"sweep": d.sweep, "suite": key, "type": d.suite_types.get(key, key),
                         "conditions": int((c["suite"] == key).sum()) if not c.empty else None,
                         "metric rows": int((m["suite"] == key).sum()), "what it is": d.suite_words.get(key, "")})  # fmt: skip
    if not rows:
        return []
    table = pd.DataFrame(rows)
    if len(res.designs) == 1:
        table = table.drop(columns="sweep")
    sec = Section("Suites")
    sec.text.append("The test suites each model was evaluated on (a row per suite), as suites.json describes them.")
    sec.items.append(sink.table("suites", table, "Suites"))
    return [sec]


def _methods() -> Section:
    s = Section("Methods")
    s.text += [
        "- Spearman r: scipy.stats.spearmanr (000 eq. 5); Pearson: scipy.stats.pearsonr. Two-sided p exact for n <= 10 (every one "
        "of the n! pairings of the points, ties as average ranks, as scipy.stats.permutation_test; `p_method` says so), the t "
        "approximation above. r is undefined (n/a) for a constant variable or fewer than 3 points. The paper comparison uses "
        "these p.\n"
        "- Intervals (95 %, `ci_low`/`ci_high` in statistics.csv, how in `note`): r by a bootstrap over seeds (2000 resamples of "
        "each design point's replicates, residuals rescaled by sqrt(m/(m-1)), expanded percentile) where a point has several "
        "seeds, else Fisher's z (Bonett-Wright se for Spearman); means by the t interval; an accuracy over seeds by the t "
        "interval, of a single trial by Wilson's interval on its test images (statsmodels proportion_confint); OLS coefficients "
        "by statsmodels' t interval, R by the same bootstrap (none without replicates).\n"
        "- Strength (000 §2.4), a band of |r| and not a test: > 0.95 'significant' (000's word), 0.8-0.95 high, 0.5-0.8 "
        "moderate, 0.3-0.5 low, < 0.3 weak or none. Anywhere else 'significant' means p < alpha (the recipe's, default 0.05).\n"
        "- Multiple correlation R (000 eq. 6): sqrt(R²) of statsmodels OLS with an intercept (as R's lm); p = F-test p.\n"
        "- Range analysis and ANOVA of orthogonal designs: K, k, R per factor; main-effects ANOVA (statsmodels, type II), "
        "whose residual equals the empty columns' sum of squares.\n"
        "- Suites are lists of named conditions (suites.json); where conditions share a level (corruptions, pixel, two-factor-69) "
        "they are analysed per condition, never averaged over the level.\n"
        "- mCV (003): MA = mean, CV = 100 x population sd / mean over a model's test sets (the 69 conditions of two-factor-69); "
        "Algorithm 1 groups I-IV.\n"
        "- Per-corruption accuracy (004 §4.2): P_c = mean over the severities of corruption c; aggregate = mean of P_c over the "
        "corruptions; mCE = mean over corruptions of summed error / the baseline model's summed error.\n"
        "- Pixel-index (002 eq. 7): Pi = w / (p r a) per condition, p, r, a from suites.json.\n"
        "- Overlapping score (001; Laugros et al. 2021): see the overlap section."
    ]
    return s


def _run_recipe(ctx: Ctx) -> tuple[list[Section], list[Section]]:
    """(step sections, comparison sections) of one recipe; sections without a table or
    figure are left out, and so is a heading left without sections."""
    r = ctx.recipe
    out = []
    designs = ctx.designs()
    refs = r.reference_paths()
    if refs:
        ctx.reference = pd.concat([load_reference(p) for p in refs], ignore_index=True)
    for d in designs:
        secs_d = []
        for step in r.analyses:
            ctx.step = step.id or step.type
            secs = [s for s in STEPS.get(step.type).run(ctx, step, d) if not s.empty]
            for s in secs:
                s.level = 4 if len(designs) > 1 else 3
            secs_d += secs
        if secs_d and len(designs) > 1:
            secs_d.insert(0, Section(f"Sweep {d.sweep}", level=3))
        out += secs_d
    if out:
        out.insert(0, Section(f"Recipe {r.name}" + (f": {r.description}" if r.description else "")))
    comp = []
    if refs:
        table = pd.concat([compare(load_reference(p), ctx.stats_frame(), r.alpha) for p in refs], ignore_index=True)
        ctx.comparison = table
        names = ", ".join(p.name for p in refs)
        sec = Section(f"Comparison with the published values ({names})", level=2)
        agree = table["agreement"].str.startswith("same").sum()
        done = int(table["reproduced"].notna().sum())
        sec.text.append(
            f"{agree} of {len(table)} published numbers agree (same strength band and sign for r/R, same verdict at "
            f"alpha={r.alpha} for p, our p exact for n <= 10); {done - agree} differ and {len(table) - done} are not in "
            "these results. Sign and strength are given separately for r and R."
        )
        sec.items.append(ctx.sink.table(f"{r.name}__reference", table, f"Published vs reproduced ({names})"))
        comp.append(sec)
    return out, comp


def _banners(res: Results) -> list[Banner]:
    out = []
    for d in res.designs.values():
        if d.smoke:
            epochs = (d.spec.get("training") or {}).get("max_epochs")
            data = (d.spec.get("dataset") or {}).get("name", "its dataset")
            what = f"{epochs} epoch{'s' if epochs != 1 else ''} on {data}" if epochs else f"a reduced run on {data}"
            out.append(
                Banner(
                    f"smoke test: {what} — not comparable with the paper"
                    + (f" ({d.sweep})" if len(res.designs) > 1 else "")
                )
            )
    for sweep, (done, total) in res.partial.items():
        out.append(
            Banner(
                f"partial: {done} of {total} trials of {sweep} have finished (the sweep is running or was "
                "stopped); every statistic is over those alone"
            )
        )
    return out


def _summary(ctxs: list[Ctx]) -> list[Section]:
    """The leading section: the summary table over every recipe's correlation steps."""
    sections = []
    for ctx in ctxs:
        if not ctx.summary:
            continue
        table = summary_table(ctx.summary, ctx.comparison)
        title = "Summary" + (f" ({ctx.recipe.name})" if len(ctxs) > 1 else "")
        sec = Section(title)
        sec.text.append(
            "Per factor x architecture x suite: accuracy (mean over seeds, 95 % interval) at the baseline level and at "
            "the highest level, the level with the best mean accuracy, Spearman r with its 95 % interval and p"
            + (", and how many published numbers of the reference tables agree" if ctx.comparison is not None else "")
            + ". The sections below give every number and the Methods section how each is computed."
        )
        sec.items.append(ctx.sink.table(f"{ctx.recipe.name}__summary", table, "Summary"))
        sections.append(sec)
    return sections


def analyze(
    results: str | Path, output: str | Path | None = None, recipes: list[str] | None = None, plots: bool = True
) -> Path:
    """Analyse the results under ``results`` (a run folder, a folder of them, or a glob)
    with the given recipe files (default: the design-driven recipe) and write the report
    to ``output`` (default: RESULTS/analysis); ``plots=False`` writes tables and report
    only. Returns the output folder."""
    where = str(results)
    res = load_results(where)
    recs = [load_recipe(p) for p in recipes] if recipes else [default_recipe(res)]
    for r in recs:
        check_recipe(r, res)
        if r.defaults:
            r.analyses = default_recipe(res).analyses + r.analyses
        for p in r.reference_paths():
            load_reference(p)
    out = Path(output) if output else default_output(where)
    _check_output(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        sink = Sink(tmp, plots)
        body, comparisons, stats, ctxs = [], [], [], []
        for r in recs:
            ctx = Ctx(res, r, sink)
            steps, comp = _run_recipe(ctx)
            body += steps
            comparisons += comp
            stats.append(ctx.stats_frame())
            ctxs.append(ctx)
        allstats = pd.concat(stats, ignore_index=True)
        t = sink.table("statistics", allstats, "All statistics (long form)")
        tail = [
            Section(
                "All statistics",
                [
                    f"Every statistic above, one row per number with its 95 % interval (ci_low, ci_high), n, "
                    f"n excluded, p_method and note, is in [{t.csv}]({t.csv}) ({len(allstats)} rows): the table "
                    "to compare reproductions with."
                ],
            )
        ]
        sections = _summary(ctxs) + body + comparisons + tail + _overview(res, recs) + _suites(res, sink) + [_methods()]
        title = "robust_ray analysis: " + ", ".join(res.designs)
        banners = _banners(res)
        (tmp / "report.md").write_text(markdown(title, sections, banners))
        (tmp / "report.html").write_text(html_report(title, sections, tmp, banners))
        _replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _replace(tmp: Path, out: Path) -> None:
    """Move the finished report into place; an older one is removed only afterwards."""
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
        out.rename(old)
    tmp.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
