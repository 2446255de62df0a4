"""What a finished study found: every study trial as a table, the best feasible trial of a
single-objective search, and the Pareto front (``study.best_trials``, feasible trials only)
of a multi-objective one as a table and a plot."""

from __future__ import annotations

import itertools
import math
import textwrap

import numpy as np
import optuna
import pandas as pd
from optuna.trial import FrozenTrial, TrialState

from ..config import SearchSpec
from .space import TRAINING, is_option, is_training, option_key
from .study import trial_id


def _row(t: FrozenTrial, s: SearchSpec) -> dict:
    row = {
        "optuna_number": t.number,
        "trial_id": t.user_attrs.get("trial_id", trial_id(t.number)),
        "source": t.user_attrs.get("warm_start", "search"),
        "state": t.state.name,
        **t.params,
    }
    for o, v in zip(s.objectives, t.values or [None] * len(s.objectives)):
        row[o.metric] = v
    if s.constraints:
        row["feasible"] = t.state == TrialState.COMPLETE and all(v <= 0 for v in t.constraints.values())
    return row


def study_table(study: optuna.Study, s: SearchSpec) -> pd.DataFrame:
    """One row per study trial (warm-start ones included): number, id, source, state,
    parameters, objective values and feasibility."""
    return pd.DataFrame([_row(t, s) for t in study.get_trials(deepcopy=False)])


def pareto_table(study: optuna.Study, s: SearchSpec) -> pd.DataFrame:
    """``study.best_trials``: the feasible trials no other feasible trial dominates,
    sorted by the first objective (best first)."""
    rows = [_row(t, s) for t in study.best_trials]
    cols = list(study_table(study, s).columns) if not rows else None
    front = pd.DataFrame(rows, columns=cols)
    first = s.objectives[0]
    return front.sort_values(first.metric, ascending=first.mode == "min", ignore_index=True)


def best_trial(study: optuna.Study, s: SearchSpec) -> dict | None:
    """The best feasible trial of a single-objective study, or None when there is none."""
    try:
        return _row(study.best_trial, s)
    except ValueError:  # no trial completed, or none feasible
        return None


METRIC_NAMES = {"val_acc": "validation accuracy", "train_acc": "training accuracy", "train_loss": "training loss"}


def metric_label(metric: str, mode: str) -> str:
    """An objective's axis label: 'accuracy on mnist-a (higher is better)'."""
    name = f"accuracy on {metric[4:]}" if metric.startswith("acc_") else METRIC_NAMES.get(metric, metric)
    return f"{name} ({'higher' if mode == 'max' else 'lower'} is better)"


def _caption(s: SearchSpec, width: int) -> str:
    """What the point labels name: each searched dimension with its unit."""
    from ..analysis.plots import factor_label

    parts = [
        f"{n}: recipe option {option_key(n)}"
        if is_option(n)
        else f"{n}: training setting {n[len(TRAINING) :]}"
        if is_training(n)
        else f"{n}: {factor_label(n, r.model_extra)}"
        for n, r in s.space.items()
    ]
    return textwrap.fill("point labels - " + "; ".join(p.replace("\n", " ") for p in parts), width)


def pareto_figure(table: pd.DataFrame, front: pd.DataFrame, s: SearchSpec):
    """Every pair of objectives: all completed trials (hollow: infeasible), the Pareto
    front joined in order, each front point labelled with its parameters."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..analysis.plots import OKABE_ITO

    metrics = [o.metric for o in s.objectives]
    pairs = list(itertools.combinations(range(len(metrics)), 2))
    fig, axes = plt.subplots(1, len(pairs), figsize=(5.2 * len(pairs), 5.0), squeeze=False)
    done = table[table["state"] == "COMPLETE"]
    feasible = done["feasible"].to_numpy(bool) if "feasible" in done else np.ones(len(done), bool)
    params = [c for c in s.space]
    for ax, (i, j) in zip(axes[0], pairs):
        x, y = metrics[i], metrics[j]
        ax.scatter(done[x][feasible], done[y][feasible], s=22, color="0.55", label="trials")
        if (~feasible).any():
            ax.scatter(
                done[x][~feasible], done[y][~feasible], s=22, facecolors="none", edgecolors="0.55", label="infeasible"
            )
        f = front.sort_values(x)
        # Okabe-Ito blue against grey: told apart under the common colour-vision deficiencies
        ax.plot(f[x], f[y], "o-", color=OKABE_ITO[0], ms=6, label="Pareto front")
        for _, r in f.iterrows():
            label = ", ".join(f"{p}={_fmt(r[p])}" for p in params if p in r)
            ax.annotate(label, (r[x], r[y]), textcoords="offset points", xytext=(4, 4), fontsize=7)
        ax.set_xlabel(metric_label(x, s.objectives[i].mode))
        ax.set_ylabel(metric_label(y, s.objectives[j].mode))
        ax.grid(alpha=0.3)
        ax.margins(0.15)
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"Pareto front: {len(front)} of {len(done)} completed trials")
    caption = _caption(s, int(15 * 5.2 * len(pairs)))  # about 15 characters an inch at 7 pt
    fig.text(0.01, 0.01, caption, fontsize=7, va="bottom")
    fig.tight_layout(rect=(0, 0.03 * (caption.count("\n") + 1), 1, 1))
    return fig


def plot_pareto(table: pd.DataFrame, front: pd.DataFrame, s: SearchSpec, path: str) -> None:
    """:func:`pareto_figure`, saved to ``path``."""
    import matplotlib.pyplot as plt

    fig = pareto_figure(table, front, s)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _fmt(v) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3g}"
