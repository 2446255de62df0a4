"""Achieved levels (issue 15 item 7): class imbalance measured on the composed training set
beside the nominal level, and regressions that can use either."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from analysis_data import make_sweep, stat
from scipy import stats as sst

from robust_ray.analysis.report import analyze
from robust_ray.factors import compose, perturb_pool
from robust_ray.perturb import imbalance
from robust_ray.results import trial_rows


def test_augment_copies_lower_the_imbalance_the_model_trains_at(mnist5k):
    """000 eq. 2 on the composed set: CI 0.4, then 30 Gaussian copies per class."""
    pool = perturb_pool(mnist5k.train, "gaussian_l2", 2.0, 30, seed=0, num_classes=10)
    levels = {"class_imbalance": 0.4, "gaussian_l2": 2.0}
    train, achieved = compose(mnist5k.train, levels, {"gaussian_l2": pool}, 0, 10)
    counts = np.bincount(train.labels, minlength=10)
    sampled = counts - 30  # every class got exactly 30 copies
    assert achieved["class_imbalance"] == pytest.approx(imbalance(sampled))  # nominal stage, as before
    assert achieved["class_imbalance"] == pytest.approx(0.4, abs=0.01)
    as_trained = achieved["as_trained"]["class_imbalance"]
    assert as_trained == pytest.approx(1 - counts.min() / counts.max())
    assert as_trained < achieved["class_imbalance"] - 0.01


def test_label_errors_are_measured_on_the_composed_set(mnist5k):
    train, achieved = compose(mnist5k.train, {"class_imbalance": 0.3, "label_error": 0.1}, {}, 0, 10)
    assert achieved["as_trained"]["label_error"] == achieved["label_error"] == pytest.approx(0.1, abs=0.01)
    assert achieved["as_trained"]["class_imbalance"] == pytest.approx(
        imbalance(np.bincount(train.labels, minlength=10))
    )


def test_trials_parquet_has_the_achieved_column_beside_the_nominal():
    plans = [
        {"trial_id": "t0", "arch": "lenet5", "seed": 0, "levels": {"class_imbalance": 0.4, "gaussian_l2": 2.0}},
        {"trial_id": "t1", "arch": "lenet5", "seed": 0, "levels": {"class_imbalance": None, "gaussian_l2": 0.0}},
    ]
    outcomes = {
        "t0": {"status": "ok", "achieved_json": '{"class_imbalance": 0.4, "as_trained": {"class_imbalance": 0.348}}'},
        "t1": {"status": "ok", "achieved_json": '{"class_imbalance": 0.01, "as_trained": {"class_imbalance": 0.01}}'},
    }
    trials, _ = trial_rows("s", plans, outcomes)
    assert trials["class_imbalance"].tolist() == [0.4, 0.01]
    assert trials["achieved_class_imbalance"].tolist() == [0.348, 0.01]
    assert "achieved_gaussian_l2" not in trials  # an augment level is exact: nothing to measure


def _achieved(levels):  # copies pull every CI down by a level-dependent amount
    return {"class_imbalance": levels["class_imbalance"] * (1 - 0.3 * levels["class_imbalance"])}


def _acc(arch, seed, lv, suite, level):
    return 0.95 - 0.3 * lv["class_imbalance"] ** 2 - 0.01 * level + 0.002 * seed


@pytest.fixture(scope="module")
def ci_sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("ci")
    levels = [0.0, 0.2, 0.4, 0.6, 0.8]
    make_sweep(root / "ci", "ci", {"class_imbalance": (levels, 0.0)}, _acc, seeds=(0, 1), as_trained=_achieved)
    return root / "ci"


@pytest.mark.parametrize("levels", ["nominal", "achieved"])
def test_correlation_and_regression_use_the_chosen_levels(ci_sweep, tmp_path, levels):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "name: ci\nanalyses:\n"
        f"  - {{type: correlation, levels: {levels}, methods: [spearman, pearson]}}\n"
        f"  - {{type: multiple, levels: {levels}, factors: [class_imbalance]}}\n"
    )
    out = analyze(ci_sweep, tmp_path / "a", [str(recipe)], plots=False)
    st = pd.read_csv(out / "tables" / "statistics.csv")
    trials = pd.read_parquet(ci_sweep / "trials.parquet")
    x = trials["achieved_class_imbalance" if levels == "achieved" else "class_imbalance"].to_numpy(float)
    y = trials["acc_mnist-test"].to_numpy(float)
    pearson = stat(st, analysis="correlation", statistic="pearson_r", factor="class_imbalance", suite="mnist-test")
    assert pearson["value"] == pytest.approx(sst.pearsonr(x, y).statistic, abs=1e-9)
    R = stat(st, analysis="multiple", statistic="R", factor="class_imbalance", suite="mnist-test")
    assert R["value"] == pytest.approx(abs(sst.pearsonr(x, y).statistic), abs=1e-9)
    html = (out / "report.md").read_text() if (out / "report.md").exists() else (out / "report.html").read_text()
    assert ("`levels: achieved`), not the planned one" in html) == (levels == "achieved")
    assert "achieved_class_imbalance" in html
