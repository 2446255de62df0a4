"""Figures for the report: matplotlib (Agg), colour-blind-safe colours, labelled axes.

Lines use the Okabe-Ito palette (distinguishable under the common colour-vision
deficiencies) plus distinct markers, and greys; ordered levels and accuracies use cividis
(perceptually uniform, CVD-safe); signed changes use PuOr (ColorBrewer's CVD-safe diverging
map; a sequential map cannot show where zero is). A training factor on an axis is named by
:func:`factor_label`, with its unit. Every function takes tidy frames and returns a Figure;
the caller saves it.
"""

from __future__ import annotations

import textwrap

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from .load import fmt_level  # noqa: E402
from .stats import group_intervals  # noqa: E402

OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
UNITS = {
    "gaussian_l2": "Gaussian noise in training images, L2 distance in [0,1] pixel space (000 eq. 1)",
    "fgsm_l2": "FGSM perturbation in training images, L2 distance in [0,1] pixel space (000 eq. 1)",
    "label_error": "label error rate LD of the training set (000 eq. 3)",
    "class_imbalance": "class imbalance CI of the training set (000 eq. 2)",
    "few_pixel": "pixels changed in the added training images (002)",
    "salt_pepper": "salt & pepper density of the added training images (003)",
    "gaussian_var": "Gaussian noise variance of the added training images (003)",
    "rotation": "rotation of the added training images, degrees clockwise (003)",
}
STAGE_NAMES = {"sp": "salt & pepper", "gaussian": "Gaussian variance", "rotation": "rotation (degrees)"}
ACC = "accuracy (fraction correct)"


def factor_label(name: str, options: dict | None = None) -> str:
    """An axis label for a training factor, with its unit (and 003's fixed stage)."""
    options = options or {}
    if name in UNITS:
        text = UNITS[name]
    elif name.startswith("corruption:"):
        text = f"{name.split(':', 1)[1]} severity (1-5) of the added training images (004)"
    elif ">" in name:
        a, b = name.split(">", 1)
        if options.get("first") is not None:
            text = f"{STAGE_NAMES.get(b, b)} after {STAGE_NAMES.get(a, a)} {options['first']:g} (003 two-factor training images; 0: none added)"
        elif options.get("second") is not None:
            text = f"{STAGE_NAMES.get(a, a)}, then {STAGE_NAMES.get(b, b)} {options['second']:g} (003 two-factor training images; 0: none added)"
        else:
            text = f"{name} (003 two-factor training images)"
    else:
        text = f"{name} (training-set level)"
    return textwrap.fill(text, 48)


def _title(fig: Figure, title: str) -> None:
    fig.suptitle(textwrap.fill(title, 70), fontsize=11)


def _style(ax, grid: bool = True) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    if grid:
        ax.grid(True, color="#dddddd", linewidth=0.6)


def _legend(ax, **kw) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(frameon=False, **kw)


def _panels(n: int, width: float = 4.6, height: float = 3.6, right: float = 0.3) -> tuple[Figure, list]:
    """A grid of ``n`` panels with fixed margins in inches (constrained layout costs seconds
    per figure; fixed margins keep a report with dozens of figures fast)."""
    cols = min(n, 3)
    rows = -(-n // cols)
    width = max(width, 6.0 / cols)
    W, H = width * cols, height * rows + 0.7
    fig, axes = plt.subplots(rows, cols, figsize=(W, H), squeeze=False)
    fig.subplots_adjust(
        left=0.85 / W,
        right=1 - right / W,
        bottom=0.8 / H,
        top=1 - 0.75 / H,
        wspace=0.32 * 4.6 / width + 0.05,
        hspace=0.55 * 3.6 / height,
    )
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def _draw(ax, s: pd.DataFrame, label: str, color, marker: str, dashed: bool = False) -> None:
    """``s``: indexed by x, columns mean/lo/hi/count; the 95 % interval (lo, hi) as a band
    where there is one (repeats: the t interval over seeds; one trial: Wilson's on its images)."""
    x = s.index.to_numpy(float)
    mean, lo, hi, count = (s[c].to_numpy(float) for c in ("mean", "lo", "hi", "count"))
    keep = np.isfinite(mean)
    if not keep.any():
        return
    order = np.argsort(x[keep])
    x, mean, lo, hi, count = (v[keep][order] for v in (x, mean, lo, hi, count))
    ax.plot(
        x, mean, marker=marker, markersize=4, color=color, label=label, linestyle="--" if dashed else "-", linewidth=1.4
    )
    if np.isfinite(lo).any():
        ax.fill_between(x, lo, hi, color=color, alpha=0.18, linewidth=0)


def _line(ax, g: pd.DataFrame, x: str, y: str, label: str, color, marker: str, dashed: bool = False) -> None:
    """Mean over repeats (seeds) per x, with the 95 % t band where there are repeats."""
    _draw(ax, group_intervals(g, x, y), label, color, marker, dashed)


def accuracy_lines(
    df: pd.DataFrame,
    factor: str,
    suites: list[str],
    archs: list[str],
    title: str,
    train: str | None = "train_acc",
    options: dict | None = None,
    levels: pd.DataFrame | None = None,
    published: dict | None = None,
) -> Figure:
    """000 Figs. 2-5: accuracy on every suite (and on the training set) against the
    training-set level of ``factor``; one panel per architecture. ``levels`` (arch, suite,
    level, mean, ci_low, ci_high, n_seeds; :func:`..replicates.level_table`) gives the lines
    and their 95 % bands; ``published``: (arch, suite) -> the paper's mean accuracy over the
    levels, drawn as a dotted line in the suite's colour."""
    fig, axes = _panels(len(archs))
    published = published or {}
    for ax, arch in zip(axes, archs):
        g = df[df["arch"] == arch]
        if train and train in g:
            _line(ax, g, factor, train, "train", "#000000", "x", dashed=True)
        for i, s in enumerate(suites):
            color, marker = OKABE_ITO[i % 7], MARKERS[i % len(MARKERS)]
            if levels is not None:
                lv = levels[(levels["arch"] == arch) & (levels["suite"] == s)].set_index("level")
                _draw(ax, lv.rename(columns={"ci_low": "lo", "ci_high": "hi", "n_seeds": "count"}), s, color, marker)
            else:
                _line(ax, g, factor, f"acc_{s}", s, color, marker)
            if (arch, s) in published:
                ax.axhline(published[(arch, s)], color=color, linestyle=":", linewidth=1.2, label=f"{s}: paper's mean")
        ax.set_title(arch)
        ax.set_xlabel(factor_label(factor, options), fontsize=8)
        ax.set_ylabel(ACC)
        _style(ax)
    _legend(axes[0], fontsize=8)
    _title(fig, title)
    return fig


MAX_LINES = 9


def shown_levels(values: pd.Series) -> np.ndarray:
    """The levels drawn as lines: all of them, or MAX_LINES spread evenly from the lowest
    to the highest (more lines than that cannot be told apart)."""
    levels = np.sort(values.dropna().unique())
    if len(levels) <= MAX_LINES:
        return levels
    return levels[np.unique(np.round(np.linspace(0, len(levels) - 1, MAX_LINES)).astype(int))]


def severity_lines(agg: pd.DataFrame, factor: str, suites: list[str], archs: list[str], title: str) -> Figure:
    """Accuracy against each suite's own level, one line per training level of ``factor``
    (cividis: dark = low level, light = high level); a panel per suite x architecture.
    ``agg``: arch, factor, suite, level and the mean/lo/hi/count of accuracy there (lo, hi:
    the 95 % t interval over seeds)."""
    panels = [(s, a) for s in suites for a in archs]
    fig, axes = _panels(len(panels), width=4.2, height=3.3)
    levels = shown_levels(agg[factor])
    agg = agg[agg[factor].isin(levels)]
    cmap = plt.get_cmap("cividis")
    rank = {lv: i for i, lv in enumerate(levels)}
    groups = {key: g for key, g in agg.groupby(["suite", "arch"], observed=True)}
    for ax, (suite, arch) in zip(axes, panels):
        g = groups.get((suite, arch))
        if g is not None:
            for lv, h in g.groupby(factor, sort=True):
                i = rank[lv]
                _draw(
                    ax,
                    h.set_index("level"),
                    f"{factor}={fmt_level(lv)}",
                    cmap(i / max(1, len(levels) - 1) * 0.9),
                    MARKERS[i % len(MARKERS)],
                )
        ax.set_title(f"{suite} / {arch}" if len(archs) > 1 else suite, fontsize=10)
        ax.set_xlabel(f"{suite} level")
        ax.set_ylabel(ACC)
        _style(ax)
    _legend(axes[0], fontsize=7)
    _title(fig, title)
    return fig


def heatmaps(
    df: pd.DataFrame, fx: str, fy: str, columns: dict[str, str], title: str, options: dict | None = None
) -> Figure:
    """000 Fig. 6: mean accuracy over the (fx, fy) grid, one panel per column (train and
    suites); cells annotated when the grid is small enough to read. ``options``: factor ->
    its options (003's fixed stage), for the axis labels."""
    options = options or {}
    fig, axes = _panels(len(columns), width=4.6, height=3.9)
    for ax, (label, col) in zip(axes, columns.items()):
        piv = df.pivot_table(index=fy, columns=fx, values=col, aggfunc="mean").sort_index(ascending=False)
        ax.set_title(label)
        if not np.isfinite(piv.to_numpy(float)).any():
            ax.text(0.5, 0.5, "no ok trial", ha="center", va="center", transform=ax.transAxes)
            ax.set_axis_off()
            continue
        im = ax.imshow(
            piv.to_numpy(float),
            cmap="cividis",
            aspect="auto",
            vmin=np.nanmin(piv.to_numpy(float)),
            vmax=np.nanmax(piv.to_numpy(float)),
        )
        ax.set_xticks(range(piv.shape[1]), [fmt_level(v) for v in piv.columns], fontsize=7)
        ax.set_yticks(range(piv.shape[0]), [fmt_level(v) for v in piv.index], fontsize=7)
        ax.set_xlabel(factor_label(fx, options.get(fx)), fontsize=8)
        ax.set_ylabel(factor_label(fy, options.get(fy)), fontsize=8)
        if piv.shape[0] * piv.shape[1] <= 64:  # 000 Fig. 6 is 6 x 6; larger grids are read by colour
            vals = piv.to_numpy(float)
            mid = np.nanmean(vals) if np.isfinite(vals).any() else 0
            for (r, c), v in np.ndenumerate(vals):
                if np.isfinite(v):
                    ax.text(
                        c, r, f"{v:.3f}", ha="center", va="center", fontsize=6, color="black" if v > mid else "white"
                    )
        fig.colorbar(im, ax=ax, shrink=0.8, label=ACC)
    _title(fig, title)
    return fig


def main_effects(
    levels: pd.DataFrame, factors: list[str], suites: list[str], title: str, options: dict | None = None
) -> Figure:
    """Main-effect plot of an orthogonal design: k (mean response) per level of each
    factor, one line per suite (``levels``: factor, level, k, suite; ``options``: factor ->
    its options, for the axis labels)."""
    options = options or {}
    fig, axes = _panels(len(factors), width=3.8, height=3.2)
    for ax, f in zip(axes, factors):
        for i, s in enumerate(suites):
            g = levels[(levels["factor"] == f) & (levels["suite"] == s)].sort_values("level")
            ax.plot(g["level"], g["k"], marker=MARKERS[i % len(MARKERS)], color=OKABE_ITO[i % 7], label=s)
        ax.set_xlabel(factor_label(f, options.get(f)), fontsize=8)
        ax.set_ylabel("mean accuracy k at the level")
        _style(ax)
    _legend(axes[0], fontsize=8)
    _title(fig, title)
    return fig


MAX_LABELS = 40


def mcv_plot(
    models: pd.DataFrame, refs: dict[str, tuple[float, float]], archs: list[str], title: str, ref_label: str
) -> Figure:
    """003 Fig. 2: mean accuracy (%) against CV (%), split into Groups I-IV by the
    reference point (one per architecture when ``refs`` differ, in its colour); clean-trained
    models drawn as triangles."""
    fig, ax = plt.subplots(figsize=(8.2, 5.2))
    fig.subplots_adjust(left=0.09, right=0.70, bottom=0.11, top=0.9)
    for i, arch in enumerate(archs):
        g = models[models["arch"] == arch]
        for clean, marker, size in ((False, "o", 22), (True, "^", 70)):
            h = g[g["clean"] == clean]
            if len(h):
                ax.scatter(
                    h["CV"],
                    100 * h["MA"],
                    s=size,
                    marker=marker,
                    color=OKABE_ITO[i % 7],
                    edgecolor="black" if clean else "none",
                    linewidth=0.6,
                    label=f"{arch}{' (clean)' if clean else ''}",
                    zorder=4 if clean else 3,
                    rasterized=len(h) > 2000,
                    alpha=0.8 if len(h) > 200 else 1,
                )
    points = {tuple(np.round(v, 12)) for v in refs.values()}
    shared = len(points) == 1
    for i, arch in enumerate(archs if not shared else archs[:1]):
        ma, cv = refs[arch]
        color = "#555555" if shared else OKABE_ITO[i % 7]
        ax.axvline(cv, color=color, linestyle="--" if shared else ":", linewidth=1)
        ax.axhline(100 * ma, color=color, linestyle="--" if shared else ":", linewidth=1)
        ax.scatter(
            [cv],
            [100 * ma],
            marker="+",
            s=200,
            color="#D55E00" if shared else color,
            linewidth=2,
            zorder=2,
            label=textwrap.fill(f"reference: {ref_label}" + ("" if shared else f" ({arch})"), 30),
        )
    if "training set" in models and len(models) <= MAX_LABELS:  # 003 Figs. 4-6 name each point
        for _, r in models.iterrows():
            if np.isfinite(r["CV"]) and np.isfinite(r["MA"]):
                ax.annotate(
                    str(r["training set"]),
                    (r["CV"], 100 * r["MA"]),
                    textcoords="offset points",
                    xytext=(4, 3),
                    fontsize=6,
                    color="#333333",
                )
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    for text, x, y, ha, va in (
        ("Group I", x0, y1, "left", "top"),
        ("Group II", x1, y1, "right", "top"),
        ("Group III", x0, y0, "left", "bottom"),
        ("Group IV", x1, y0, "right", "bottom"),
    ):
        ax.text(x, y, f" {text} ", ha=ha, va=va, fontsize=9, color="#333333", fontweight="bold")
    ax.set_xlabel("coefficient of variation CV (%) across test sets")
    ax.set_ylabel("mean accuracy across test sets (%)")
    ax.legend(fontsize=7, frameon=False, loc="center left", bbox_to_anchor=(1.0, 0.5))
    _style(ax)
    ax.set_title(textwrap.fill(title, 60), fontsize=11)
    return fig


def _scale(tables: list[pd.DataFrame], center: float | None) -> tuple[float, float]:
    values = np.concatenate([t.to_numpy(float).ravel() for t in tables])
    finite = values[np.isfinite(values)]
    if center is not None:
        span = float(np.max(np.abs(finite - center))) if len(finite) else 0.0
        return center - (span or 1.0), center + (span or 1.0)
    lo, hi = (float(finite.min()), float(finite.max())) if len(finite) else (0.0, 1.0)
    return (lo - 0.01, hi + 0.01) if lo == hi else (lo, hi)


def heatmap_panels(
    panels: list[tuple],
    title: str,
    xlabel: str,
    ylabel: str,
    cbar_label: str = ACC,
    cmap: str = "cividis",
    center: float | None = None,
    annotate: bool = True,
    digits: int = 2,
    limits: tuple[float, float] | None = None,
) -> Figure:
    """Heatmaps of labelled tables (rows x columns), one panel each: ``(label, table)`` or
    ``(label, table, style)`` with a style overriding ``cmap``, ``center``, ``cbar_label``,
    ``limits`` (a fixed colour range).
    Panels of one style share a colour scale so they compare: cividis for accuracies; a
    diverging PuOr (ColorBrewer's colour-blind safe) centred on ``center`` for changes.
    Cells are annotated when there are few enough to read."""
    base = {"cmap": cmap, "center": center, "cbar_label": cbar_label, "limits": limits}
    styles = [{**base, **(p[2] if len(p) > 2 else {})} for p in panels]
    tables = [p[1] for p in panels]
    keys = [(st["cmap"], st["center"], st["cbar_label"], st["limits"]) for st in styles]
    scales = {k: k[3] or _scale([t for t, k2 in zip(tables, keys) if k2 == k], k[1]) for k in set(keys)}
    nrow = max(len(t) for t in tables)
    ncol = max(t.shape[1] for t in tables)
    cell = 0.42 if annotate and ncol <= 12 else 0.16
    width = max(3.6, cell * ncol + 2.4)
    height = max(2.6, 0.24 * nrow + 1.6)
    cols = 1 if width > 7 else min(len(panels), 3)
    rows = -(-len(panels) // cols)
    label_w = 0.35 + 0.065 * max((len(str(i)) for t in tables for i in t.index), default=4)
    grouped = any(isinstance(t.columns, pd.MultiIndex) for t in tables)
    longest = max((len(str(c if not grouped else c[1])) for t in tables for c in t.columns), default=1)
    rotate = ncol > 6 or (ncol > 2 and longest > 6)
    label_h = 0.45 + (0.065 * longest if rotate else 0.15)
    group_long = max((len(str(c[0])) for t in tables for c in t.columns), default=0) if grouped else 0
    group_cols = min(
        (t.columns.get_level_values(0).value_counts().min() for t in tables if isinstance(t.columns, pd.MultiIndex)),
        default=1,
    )
    tilt = grouped and 0.065 * group_long > group_cols * cell  # group names wider than their columns: tilt them
    top_h = (0.1 + 0.04 * group_long if tilt else 0.3) if grouped else 0.0
    titled = any(p[0] for p in panels)
    head = 0.8 if titled else 0.5
    height += label_h + top_h
    W, H = (width + label_w + 0.5) * cols, height * rows + head
    fig, axes = plt.subplots(rows, cols, figsize=(W, H), squeeze=False)
    fig.subplots_adjust(
        left=label_w / W,
        right=1 - 0.6 / W,
        bottom=label_h / H,
        top=1 - (head + top_h) / H,
        wspace=(label_w + 1.4) / width,
        hspace=(label_h + top_h + 0.6) / (height - label_h - top_h),
    )
    flat = list(axes.ravel())
    for ax in flat[len(panels) :]:
        ax.set_visible(False)
    for ax, (label, t, *_), st, key in zip(flat, panels, styles, keys):
        vmin, vmax = scales[key]
        vals = t.to_numpy(float)
        im = ax.imshow(vals, cmap=st["cmap"], aspect="auto", vmin=vmin, vmax=vmax, interpolation="nearest")
        if label:
            ax.set_title(textwrap.fill(label, 50), fontsize=9, pad=6 + 72 * top_h)
        small = 7 if t.shape[1] <= 24 else 5
        if isinstance(t.columns, pd.MultiIndex):  # grouped columns: (group, column), groups named on top
            groups = t.columns.get_level_values(0)
            ax.set_xticks(range(t.shape[1]), [str(c) for c in t.columns.get_level_values(1)], fontsize=small)
            starts = [i for i in range(len(groups)) if i == 0 or groups[i] != groups[i - 1]]
            for i in starts[1:]:
                ax.axvline(i - 0.5, color="white", linewidth=2.5)
            ends = starts[1:] + [len(groups)]
            top = ax.secondary_xaxis("top")
            at = [
                a - 0.4 if tilt else (a + b - 1) / 2 for a, b in zip(starts, ends)
            ]  # tilted names start at their group
            top.set_xticks(
                at,
                [str(groups[i]) for i in starts],
                fontsize=7,
                rotation=30 if tilt else 0,
                ha="left" if tilt else "center",
                rotation_mode="anchor",
            )
            top.tick_params(length=0)
        else:
            ax.set_xticks(range(t.shape[1]), [str(c) for c in t.columns], fontsize=small, rotation=90 if rotate else 0)
        ax.set_yticks(range(t.shape[0]), [str(i) for i in t.index], fontsize=7)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_ylabel(ylabel, fontsize=8)
        if annotate and vals.size <= 200:
            c0 = st["center"]
            mid = (vmin + vmax) / 2
            for (r, c), v in np.ndenumerate(vals):
                dark = (v < mid) if c0 is None else abs(v - c0) > 0.6 * (vmax - c0)  # dark cell: white text
                text = f"{v:.{digits}f}".replace(f"-0.{'0' * digits}", f"0.{'0' * digits}") if np.isfinite(v) else "n/a"
                color = "#777777" if not np.isfinite(v) else ("white" if dark else "black")
                ax.text(c, r, text, ha="center", va="center", fontsize=6, color=color)
        fig.colorbar(im, ax=ax, shrink=0.85, label=st["cbar_label"], pad=0.02)
    _title(fig, title)
    return fig


def pixel_lines(df: pd.DataFrame, line: str, order: list[str], title: str, legend: str) -> Figure:
    """002 Figs. 8-10: accuracy, share of wrong images w and Pi against the number of changed
    pixels, one line per ``line`` value (training sets, or the settings of one experiment);
    ``df``: one row per model x condition with level, accuracy, w, Pi."""
    fig, axes = _panels(3, width=4.4, height=3.5, right=0.3)
    for i, name in enumerate(order):
        g = df[df[line] == name]
        for ax, y in zip(axes, ("accuracy", "w", "Pi")):
            _line(
                ax,
                g,
                "level",
                y,
                textwrap.shorten(str(name), 40),
                OKABE_ITO[i % 7] if i < 7 else "#777777",
                MARKERS[i % len(MARKERS)],
            )
    for ax, ylabel in zip(axes, (ACC, "w: share of images turned wrong", "Pixel-index Pi = w / (p r a)")):
        ax.set_xlabel("pixels changed per image (n)")
        ax.set_ylabel(ylabel)
        ax.set_xscale("log", base=2)
        ticks = np.sort(df["level"].dropna().unique())
        ticks = ticks[ticks > 0]
        ax.set_xticks(ticks, [fmt_level(v) for v in ticks])
        ax.minorticks_off()
        _style(ax)
    _legend(axes[0], fontsize=7, title=legend, title_fontsize=7)
    _title(fig, title)
    return fig


def pixel_plot(df: pd.DataFrame, x: str, archs: list[str], title: str, xlabel: str) -> Figure:
    """002 Fig. 8: accuracy and Pixel-index against the number of modified pixels."""
    fig, axes = _panels(2, width=5.0, height=3.8)
    a1, a2 = axes
    for i, arch in enumerate(archs):
        g = df[df["arch"] == arch]
        _line(a1, g, x, "accuracy", arch, OKABE_ITO[i % 7], MARKERS[i % len(MARKERS)])
        _line(a2, g, x, "Pi", arch, OKABE_ITO[i % 7], MARKERS[i % len(MARKERS)])
    a1.set_ylabel(ACC)
    a2.set_ylabel("Pixel-index Pi = w / (p r a)")
    for ax in (a1, a2):
        ax.set_xlabel(xlabel)
        _style(ax)
    _legend(a1, fontsize=8)
    _title(fig, title)
    return fig


def save(fig: Figure, path) -> None:
    fig.savefig(path, dpi=130)
    plt.close(fig)


CURVE_LABELS = {"val_acc": "validation accuracy (fraction correct)", "train_loss": "mean training loss of the epoch"}


def learning_curves(
    h: pd.DataFrame, panel: str, order: list[str], archs: list[str], title: str, metric: str = "val_acc"
) -> Figure:
    """Per-epoch learning curves as small multiples: one panel per value of ``panel`` (a
    training level or training set, in ``order``), one line per trial coloured by its
    architecture (Okabe-Ito, with markers), on shared axes, so a model that did not
    converge stands out beside the others. ``h``: history.parquet rows with ``panel``,
    ``arch``, ``tidx``, ``epoch`` and ``metric``."""
    fig, axes = _panels(len(order), width=3.4, height=2.7)
    values = h[metric].to_numpy(float)
    finite = values[np.isfinite(values)]
    lo, hi = (float(finite.min()), float(finite.max())) if len(finite) else (0.0, 1.0)
    pad = 0.05 * (hi - lo or 1.0)
    epochs = int(h["epoch"].max()) if len(h) else 1
    for ax, name in zip(axes, order):
        seen = set()
        for _, t in h[h[panel] == name].groupby("tidx", sort=False):
            arch = str(t["arch"].iloc[0])
            i = archs.index(arch) if arch in archs else len(archs)
            t = t.sort_values("epoch")
            ax.plot(
                t["epoch"],
                t[metric],
                color=OKABE_ITO[i % len(OKABE_ITO)],
                marker=MARKERS[i % len(MARKERS)],
                markersize=3,
                linewidth=1.1,
                alpha=0.85,
                label=None if arch in seen else arch,
            )
            seen.add(arch)
        ax.set_title(textwrap.fill(str(name), 34), fontsize=9)
        ax.set_xlim(0.5, epochs + 0.5)
        ax.set_ylim(lo - pad, hi + pad)
        ax.set_xlabel("epoch")
        ax.set_ylabel(textwrap.fill(CURVE_LABELS.get(metric, metric), 26), fontsize=8)
        _style(ax)
    if len(archs) > 1 and axes:
        _legend(axes[0], fontsize=7)
    _title(fig, title)
    return fig
