"""Learning curves from history.parquet: per-epoch validation accuracy (or training loss)
of every trial, as small multiples per training level, so a reader sees which models did
not converge (000 §2.1 trains "to convergence": early stopping on a validation split)."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from .. import plots
from ..context import Ctx, training_labels
from ..load import Design, fmt_level
from ..options import Step
from ..registry import register
from ..render import Section

MAX_PANELS = 24  # training levels drawn in one figure; more are listed as left out


class LearningCurves(Step):
    """Per-epoch curves of every trial (ok or not), one panel per level of each factor
    (one_factor designs) or per training set (other designs)."""

    type: Literal["learning_curves"]
    metric: Literal["val_acc", "train_loss"] = "val_acc"
    factors: list[str] | None = None


def _capped(T: pd.DataFrame, d: Design) -> str:
    """Trials that ran to ``training.max_epochs`` without early stopping, or diverged."""
    cap = (d.spec.get("training") or {}).get("max_epochs")
    notes = []
    if cap and "epochs" in T and "best_epoch" in T:
        hit = T[(T["epochs"] == cap) & (T["best_epoch"] == cap)]
        if len(hit):
            notes.append(
                f"{len(hit)} of {len(T)} trials were still improving at the epoch cap (max_epochs = {cap}: best epoch = "
                f"last epoch), so they may not have converged: {', '.join(hit['trial_id'].astype(str)[:12])}"
                + (" ..." if len(hit) > 12 else "")
            )
    div = T[T["status"].astype(str) == "diverged"]
    if len(div):
        notes.append(
            f"{len(div)} trial(s) diverged (a non-finite training loss): {', '.join(div['trial_id'].astype(str)[:12])}"
        )
    return (
        "; ".join(notes) + "."
        if notes
        else "Every trial stopped early (validation accuracy stopped improving) before the epoch cap."
    )


@register(LearningCurves)
def learning_curves_step(ctx: Ctx, step: LearningCurves, d: Design) -> list[Section]:
    H = ctx.res.history
    sec = Section(f"{d.sweep}: learning curves", level=3)
    H = H[H["sweep"] == d.sweep] if len(H) else H
    if H.empty or step.metric not in H:
        sec.text.append("No history.parquet (per-epoch reports) in these results; nothing to plot.")
        return [sec]
    T = ctx.trials(d)
    sec.text.append(_capped(T, d))
    if not ctx.sink.plots:
        return [sec]
    archs = ctx.archs(d)
    groups: list[tuple[str, pd.DataFrame, pd.Series]] = []
    if d.one_factor and d.factors:
        for f in step.factors or list(d.factors):
            G = T[d.series(T, f)]
            groups.append((f, G, G[f].map(lambda v, f=f: f"{f} = {fmt_level(v)}")))
    else:
        groups.append(("training set", T, training_labels(T, d)))
    for name, G, labels in groups:
        pos = G.index.get_indexer(H["tidx"].to_numpy())
        h = H[pos >= 0].assign(
            arch=G["arch"].astype(str).to_numpy()[pos[pos >= 0]], panel=labels.to_numpy()[pos[pos >= 0]]
        )
        if h.empty:
            continue
        # panels in level order (one_factor), else in design order
        ranked = labels.iloc[np.argsort(G[name].to_numpy(float), kind="stable")] if name in G else labels
        order = list(dict.fromkeys(ranked))
        left = order[MAX_PANELS:]
        order = order[:MAX_PANELS]
        what = plots.CURVE_LABELS.get(step.metric, step.metric)
        sec.add(
            ctx.sink.figure(
                ctx.stem(step, d, name, step.metric),
                lambda h=h, order=order: plots.learning_curves(
                    h, "panel", order, archs, f"{d.sweep}: {what} per epoch, per {name}", step.metric
                ),
                f"Learning curves ({what}) per {name}, one line per trial"
                + (f"; {len(left)} more panels left out ({', '.join(left[:5])} ...)" if left else ""),
            )
        )
    sec.text.append(
        "Lines: one trial each (colour: architecture), every trial whether ok, diverged or failed; the epoch whose "
        "weights were kept is the best validation accuracy (trials.parquet's best_epoch)."
    )
    return [sec]
