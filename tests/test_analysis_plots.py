"""Figures: every training factor on an axis is named with its unit (factor_label), and
every colour is colour-blind safe: Okabe-Ito or grey for lines and points, cividis (or
viridis) for ordered values, PuOr for signed changes."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from analysis_data import make_sweep
from matplotlib import colormaps
from matplotlib.colors import to_hex

from robust_ray.analysis import plots
from robust_ray.analysis.plots import OKABE_ITO, factor_label
from robust_ray.analysis.report import analyze
from robust_ray.factors import _SPECIAL
from robust_ray.perturb import PERTURBATIONS

GENERIC = "(training-set level)"  # factor_label's fallback for a factor it knows nothing about


@pytest.mark.parametrize("name", sorted([*_SPECIAL, *PERTURBATIONS]))
def test_every_registered_factor_has_a_label_with_its_unit(name):
    options = {"first": 0.1} if ">" in name else None  # a 003 composition always fixes one stage
    label = factor_label(name, options).replace("\n", " ")
    assert GENERIC not in label
    if ">" in name:  # the fixed stage and its level are part of the label
        assert "after" in label and "0.1" in label


@pytest.mark.parametrize(
    "name, options, words",
    [
        ("gaussian_l2", None, ["Gaussian", "L2 distance", "[0,1] pixel space"]),
        ("fgsm_l2", None, ["FGSM", "L2 distance"]),
        ("label_error", None, ["label error rate LD"]),
        ("class_imbalance", None, ["class imbalance CI"]),
        ("corruption:fog", None, ["fog severity (1-5)"]),
        ("sp>gaussian", {"first": 0.1}, ["Gaussian variance after salt & pepper 0.1"]),
        ("sp>rotation", {"second": 30}, ["salt & pepper, then rotation (degrees) 30"]),
    ],
)
def test_factor_label_names_the_unit(name, options, words):
    label = factor_label(name, options).replace("\n", " ")
    for w in words:
        assert w in label


def grid_frame() -> pd.DataFrame:
    rows = [
        {"arch": "lenet5", "gaussian_l2": g, "fgsm_l2": f, "train_acc": 0.99 - 0.01 * g, "acc_mnist-c": 0.9 - 0.01 * f}
        for g in (0.0, 2.0, 4.0)
        for f in (0.0, 3.0)
    ]
    return pd.DataFrame(rows)


def test_heatmap_axes_are_the_factor_labels():
    fig = plots.heatmaps(grid_frame(), "fgsm_l2", "gaussian_l2", {"train": "train_acc", "mnist-c": "acc_mnist-c"}, "t")
    for ax in fig.axes[:2]:  # the two panels (the rest are their colour bars)
        assert ax.get_xlabel() == factor_label("fgsm_l2")
        assert ax.get_ylabel() == factor_label("gaussian_l2")


def test_main_effect_axes_are_the_factor_labels_with_003_options():
    levels = pd.DataFrame(
        {
            "factor": ["sp>gaussian"] * 2 + ["rotation"] * 2,
            "level": [0.0, 0.1, 0.0, 30.0],
            "k": [0.9, 0.8, 0.9, 0.7],
            "suite": "s",
        }
    )
    fig = plots.main_effects(levels, ["sp>gaussian", "rotation"], ["s"], "t", {"sp>gaussian": {"first": 0.2}})
    assert [ax.get_xlabel() for ax in fig.axes] == [
        factor_label("sp>gaussian", {"first": 0.2}),
        factor_label("rotation"),
    ]


def test_a_grid_sweeps_report_labels_every_factor_axis(tmp_path, monkeypatch):
    """End to end: the heatmap and main-effect figures the report draws (caught before saving)."""
    drawn, save = {}, plots.save

    def keep(fig, path):
        drawn[path.name] = fig
        save(fig, path)

    monkeypatch.setattr(plots, "save", keep)
    root = make_sweep(
        tmp_path / "grid",
        "dual",
        {"gaussian_l2": ([0.0, 2.0], None), "fgsm_l2": ([0.0, 2.0, 4.0], None)},
        lambda arch, seed, lv, suite, level: 0.9 - 0.01 * lv["fgsm_l2"] + 0.001 * seed,
        design="grid",
        seeds=(0, 1),
    )
    analyze(root, tmp_path / "report")
    heat = [f for n, f in drawn.items() if "heatmap" in n]
    effects = [f for n, f in drawn.items() if "orthogonal" in n]
    assert heat and effects
    labels = {factor_label("gaussian_l2"), factor_label("fgsm_l2")}
    for fig in heat:
        assert {fig.axes[0].get_xlabel(), fig.axes[0].get_ylabel()} == labels
    for fig in effects:
        assert {ax.get_xlabel() for ax in fig.axes if ax.get_visible()} == labels


SAFE_MAPS = {"cividis", "viridis", "PuOr"}
CIVIDIS = {to_hex(c) for c in colormaps["cividis"](np.linspace(0, 1, 256))}


def drawn_colours(fig) -> tuple[set[str], set[str]]:
    """(hex colours of lines, points and bands; names of the colour maps of mapped data)."""
    colours, maps = set(), set()
    for ax in fig.axes:
        colours |= {to_hex(line.get_color()) for line in ax.get_lines()}
        for art in [*ax.images, *ax.collections]:
            if art.get_array() is not None:
                maps.add(art.get_cmap().name)
            else:
                colours |= {to_hex(c, keep_alpha=False) for c in art.get_facecolor()}
    return colours, maps


def is_grey(hex_colour: str) -> bool:
    return hex_colour[1:3] == hex_colour[3:5] == hex_colour[5:7]


def example_figures():
    df = grid_frame().assign(**{"acc_mnist-a": 0.5})
    agg = pd.DataFrame(
        [
            {
                "arch": "lenet5",
                "fgsm_l2": f,
                "suite": "mnist-c",
                "level": lv,
                "mean": 0.9,
                "std": 0.02,
                "lo": 0.88,
                "hi": 0.92,
                "count": 2,
            }
            for f in (0.0, 3.0, 6.0)
            for lv in (1.0, 2.0)
        ]
    )
    levels = pd.DataFrame(
        {"factor": "fgsm_l2", "level": [0.0, 3.0] * 9, "k": 0.8, "suite": [f"s{i}" for i in range(9) for _ in (0, 1)]}
    )
    models = pd.DataFrame(
        {
            "arch": ["lenet5", "lenet5", "alexnet8"],
            "clean": [True, False, False],
            "CV": [3.0, 2.0, 4.0],
            "MA": [0.9, 0.95, 0.85],
        }
    )
    table = pd.DataFrame([[0.9, 0.8], [0.7, 0.6]], index=["a", "b"], columns=["x", "y"])
    pix = pd.DataFrame(
        {
            "set": [f"t{i}" for i in range(9) for _ in (0, 1)],
            "level": [1.0, 4.0] * 9,
            "accuracy": 0.9,
            "w": 0.1,
            "Pi": 2.0,
            "arch": "lenet5",
        }
    )
    yield "accuracy_lines", plots.accuracy_lines(df, "fgsm_l2", ["mnist-c", "mnist-a"] * 4, ["lenet5"], "t")
    yield "severity_lines", plots.severity_lines(agg, "fgsm_l2", ["mnist-c"], ["lenet5"], "t")
    yield "heatmaps", plots.heatmaps(df, "fgsm_l2", "gaussian_l2", {"train": "train_acc"}, "t")
    yield "main_effects", plots.main_effects(levels, ["fgsm_l2"], [f"s{i}" for i in range(9)], "t")
    yield (
        "mcv_plot",
        plots.mcv_plot(models, {"lenet5": (0.9, 3.0), "alexnet8": (0.88, 3.5)}, ["lenet5", "alexnet8"], "t", "clean"),
    )
    yield (
        "heatmap_panels",
        plots.heatmap_panels([("acc", table), ("change", table - 0.7, {"cmap": "PuOr", "center": 0.0})], "t", "x", "y"),
    )
    yield "pixel_lines", plots.pixel_lines(pix, "set", [f"t{i}" for i in range(9)], "t", "training set")
    yield "pixel_plot", plots.pixel_plot(pix, "level", ["lenet5"], "t", "pixels")
    hist = pd.DataFrame(
        [
            {
                "tidx": t,
                "arch": ["lenet5", "alexnet8"][t % 2],
                "panel": f"f={t // 2}",
                "epoch": e,
                "val_acc": 0.5 + 0.1 * e,
            }
            for t in range(4)
            for e in (1, 2, 3)
        ]
    )
    yield "learning_curves", plots.learning_curves(hist, "panel", ["f=0", "f=1"], ["lenet5", "alexnet8"], "t")


def test_every_plot_uses_colour_blind_safe_colours():
    okabe = {c.lower() for c in OKABE_ITO}
    seen = set()
    for name, fig in example_figures():
        colours, maps = drawn_colours(fig)
        cividis_lines = name == "severity_lines"  # its lines are ordered levels
        bad = {c for c in colours if not (c in okabe or is_grey(c) or (cividis_lines and c in CIVIDIS))}
        assert not bad, f"{name}: {bad}"
        assert maps <= SAFE_MAPS, f"{name}: {maps}"
        seen.add(name)
        plt.close(fig)
    assert len(seen) == 9


def test_learning_curves_draw_one_line_per_trial_in_its_levels_panel():
    hist = pd.DataFrame(
        [
            {
                "tidx": t,
                "arch": ["lenet5", "alexnet8"][t % 2],
                "panel": f"f={t // 2}",
                "epoch": e,
                "val_acc": 0.5 + 0.01 * t,
            }
            for t in range(4)
            for e in range(1, 5 - t % 2)
        ]
    )
    fig = plots.learning_curves(hist, "panel", ["f=0", "f=1"], ["lenet5", "alexnet8"], "t")
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == ["f=0", "f=1"]
    for ax, trials in zip(panels, [(0, 1), (2, 3)]):
        lines = ax.get_lines()
        assert [len(line.get_xdata()) for line in lines] == [4, 3]  # each trial's own epochs
        assert [line.get_ydata()[0] for line in lines] == [0.5 + 0.01 * t for t in trials]
        assert [to_hex(line.get_color()) for line in lines] == [
            OKABE_ITO[0].lower(),
            OKABE_ITO[1].lower(),
        ]  # by architecture
        assert ax.get_xlabel() == "epoch"
    plt.close(fig)
