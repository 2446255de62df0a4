"""001: the corruption overlapping score of every pair of corruptions (Laugros et al. 2021)."""

from __future__ import annotations

import itertools
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field

from ...errors import UserError
from .. import plots
from ..context import Ctx, excluded_text
from ..corruption import overlap_score, per_corruption, robustness
from ..load import Design, fmt_level
from ..options import Step, Strict
from ..registry import register
from ..render import Section
from ..select import clean_suites, overlap_factors, sweep_suites
from .p004_corruption import corruption_metrics
from .per_model import clean_reference


class Corruption(Strict):
    factor: str = Field(description="the training factor that adds this corruption")
    level: float = Field(description="the factor's level M_c was trained at")
    suite: str | None = Field(
        None,
        description="a suite of its own for this corruption (older layout); "
        "default: its conditions in the corruptions suite",
    )
    corruption: str | None = Field(None, description="its name in the corruptions suite (default: the key)")


class OverlapStep(Step):
    """001: corruption overlapping score of every pair of corruptions. Without
    ``corruptions``: every corruption c of the corruptions suite that a ``corruption:c``
    training factor adds (at that factor's highest level)."""

    type: Literal["overlap"]
    clean_suite: str | None = Field(None, description="default: the sweep's clean suite")
    suite: str | None = Field(None, description="default: the sweep's corruptions suite")
    corruptions: dict[str, Corruption] | None = Field(None, min_length=2)


def _check(step: OverlapStep, i: int, chk) -> None:
    for key in ("suite", "clean_suite"):
        if getattr(step, key):
            chk.need_suite(getattr(step, key), chk.path(i, key))
    if step.clean_suite:
        chk.need_clean(step.clean_suite, chk.path(i, "clean_suite"))
    for name, c in (step.corruptions or {}).items():
        chk.need_column(c.factor, f"analyses[{i}].corruptions.{name}.factor", "factor")
        if c.suite:
            chk.need_suite(c.suite, f"analyses[{i}].corruptions.{name}.suite")
    for d in chk.targets:
        if not step.clean_suite and not clean_suites(chk.results, d):
            chk.fail(
                chk.path(i, "clean_suite"), f"no clean suite in {d.folder} (suites: {', '.join(d.suites)}); name one"
            )
        needs_suite = step.corruptions is None or any(c.suite is None for c in step.corruptions.values())
        if needs_suite and not step.suite and not sweep_suites(chk.results, d, "corruptions"):
            chk.fail(chk.path(i, "suite"), f"no corruptions suite in {d.folder} (suites: {', '.join(d.suites)})")
        if step.corruptions is None and len(overlap_factors(d, chk.results, step.suite)) < 2:
            found = ", ".join(overlap_factors(d, chk.results, step.suite)) or "none"
            chk.fail(
                chk.path(i, "type"),
                f"the overlapping score needs models trained with two or more corruptions of the "
                f"corruptions suite (factors corruption:<name>); {d.folder} has {found}",
            )


def _overlap_terms(ctx: Ctx, step: OverlapStep, d: Design) -> tuple[dict, str]:
    """name -> (factor, level, suite or None, corruption): what M_c and R(., c) are built from."""
    if step.corruptions:
        return {
            n: (c.factor, c.level, c.suite, c.corruption or n) for n, c in step.corruptions.items()
        }, "given in the recipe"
    found = overlap_factors(d, ctx.res, step.suite)
    out = {}
    for name, f in found.items():
        levels = [
            lv
            for lv in d.factors[f]
            if not np.isclose(lv, d.baselines.get(f) if d.baselines.get(f) is not None else 0.0)
        ]
        if levels:
            out[name] = (f, max(levels), None, name)
    return (
        out,
        "every corruption of the corruptions suite that a corruption:<name> factor trains on, at that factor's highest level",
    )


@register(OverlapStep, _check)
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
        M, cnames, key, csuite = corruption_metrics(ctx, d, step.suite)
        pc = per_corruption(M, cnames, key)
    if step.clean_suite or csuite is None:
        clean_suite = step.clean_suite or ctx.clean_suite(d)
        clean_acc, clean_text = ok[f"acc_{clean_suite}"], f"suite {clean_suite}"
    else:
        clean_acc, clean_text = clean_reference(ctx, d, csuite)
    missing = [n for n, (_, _, s, c) in terms.items() if s is None and (pc is None or c not in pc.columns)]
    if missing:
        raise UserError(
            f"{ctx.recipe.file or 'recipe'}: overlap: no corruption {missing[0]!r} in the corruptions suite of {d.sweep}"
        )

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
            why = (
                ""
                if np.isfinite(score)
                else ("a model is missing" if n == 0 else "training on a corruption did not raise robustness to it")
            )
            ctx.record("overlap", d, "overlap", score, n, factor=f"{c1}~{c2}", arch=arch, note=why)
            pair_rows.append(
                {"arch": arch, "corruption 1": c1, "corruption 2": c2, "overlap": score, "n": n, "note": why}
            )
            mat.loc[c1, c2] = mat.loc[c2, c1] = score
        matrices[arch] = mat
    sec = Section(f"{d.sweep}: corruption overlapping score", level=3)
    desc = "; ".join(
        f"{n}: trained with {f}={fmt_level(lv)}, robustness on "
        + (f"suite {s}" if s else f"{c} of the corruptions suite (P_c)")
        for n, (f, lv, s, c) in terms.items()
    )
    sec.text += [
        excluded_text(T),
        f"Corruptions ({chosen}): {desc}. R(M, c) = accuracy on c / clean accuracy (from {clean_text}); "
        "O(c1, c2) = max(0, ½[(R(M_c2,c1) - R(M,c1)) / (R(M_c1,c1) - R(M,c1)) + (R(M_c1,c2) - R(M,c2)) / (R(M_c2,c2) - R(M,c2))]) "
        "(Laugros et al. 2021, cited in 001); M = the clean-trained model, M_c = the model trained with c; "
        "n = the fewest models behind a term (seeds are averaged).",
    ]
    sec.items.append(
        ctx.sink.table(ctx.stem(step, d, "pairs"), pd.DataFrame(pair_rows), f"Overlapping scores ({d.sweep})")
    )
    sec.items.append(
        ctx.sink.table(
            ctx.stem(step, d, "robustness"),
            pd.DataFrame(rob_rows),
            f"Relative robustness R(model, corruption) ({d.sweep})",
        )
    )
    panels = [(arch, mat) for arch, mat in matrices.items()]
    if panels:
        sec.add(
            ctx.sink.figure(
                ctx.stem(step, d, "matrix"),
                lambda: plots.heatmap_panels(
                    panels,
                    f"{d.sweep}: corruption overlapping score",
                    "corruption",
                    "corruption",
                    cbar_label="overlapping score O",
                    limits=(0.0, 1.0),
                ),
                "Overlapping score of every pair of corruptions (0: independent, 1: training on either is as good as the other; "
                "n/a: undefined; the diagonal is 1 by definition), one panel per architecture",
            )
        )
    return [sec]
