"""A tiny real sweep through Ray Tune: datasets in the object store, Parquet contract out."""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from robust_ray.config import parse_spec
from robust_ray.results import SCHEMA_KEY
from robust_ray.runtime import Execution
from robust_ray.sweep import run_sweep

TINY = {
    "name": "tiny",
    "dataset": {"name": "mnist-5k"},
    "architectures": ["lenet5"],
    "seeds": [0],
    "training": {"max_epochs": 2, "patience": 1, "batch_size": 128},
    "design": {
        "type": "one_factor",
        "factors": {"gaussian_l2": {"levels": [3.0], "per_class": 20}, "label_error": {"levels": [0.2]}},
    },
    "suites": {"mnist-test": {"n": 200}, "mnist-c": {"levels": [2.0, 4.0], "n": 200}},
}


@pytest.fixture(scope="module")
def tiny_run(ray_session, tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny") / "out"
    run_sweep(parse_spec(TINY), Execution(output=str(out), log=lambda *_: None))
    return out


def test_trials_parquet_contract(tiny_run):
    t = pq.read_table(tiny_run / "trials.parquet")
    assert t.schema.metadata[SCHEMA_KEY] == b"1"
    df = t.to_pandas()
    assert list(df.columns[:6]) == ["trial_id", "sweep", "arch", "recipe", "seed", "status"]
    for col in ["gaussian_l2", "label_error", "train_acc", "epochs", "wall_s", "acc_mnist-test", "acc_mnist-c"]:
        assert col in df.columns
    assert len(df) == 3 and (df["status"] == "ok").all()
    assert sorted(zip(df.gaussian_l2, df.label_error)) == [(0.0, 0.0), (0.0, 0.2), (3.0, 0.0)]
    assert df["train_acc"].between(0, 1).all() and (df["epochs"] >= 1).all()
    # the composed training set: 4,000 clean + 20 perturbed per class when gaussian_l2 > 0
    assert df["n_train"].tolist() == [4000 + 200 * (g > 0) for g in df.gaussian_l2]


def test_metrics_parquet_agrees_with_trials(tiny_run):
    trials = pq.read_table(tiny_run / "trials.parquet").to_pandas().set_index("trial_id")
    m = pq.read_table(tiny_run / "metrics.parquet").to_pandas()
    assert list(m.columns) == [
        "trial_id",
        "suite",
        "condition",
        "level",
        "accuracy",
        "n",
        "n_correct",
        "sweep",
        "flipped",
    ]
    assert (m["sweep"] == "tiny").all()  # the sweep's name on every row (issue 17)
    assert m["flipped"].isna().all()  # counted only in suites holding their unchanged images (pixel)
    assert len(m) == 3 * (1 + 2) and (m["n"] == 200).all()
    for (tid, suite), g in m.groupby(["trial_id", "suite"]):
        expected = (g.accuracy * g.n).sum() / g.n.sum()
        assert trials.loc[tid, f"acc_{suite}"] == pytest.approx(expected)


def test_history_parquet_has_one_row_per_trial_and_epoch(tiny_run):
    trials = pq.read_table(tiny_run / "trials.parquet").to_pandas().set_index("trial_id")
    h = pq.read_table(tiny_run / "history.parquet").to_pandas()
    assert list(h.columns[:5]) == ["trial_id", "epoch", "train_loss", "val_acc", "train_s"]
    assert len(h) == trials["epochs"].sum() > 0
    for tid, g in h.groupby("trial_id"):
        assert g["epoch"].tolist() == list(range(1, trials.loc[tid, "epochs"] + 1))
        # the kept weights are the best epoch's: its validation accuracy is the trial's
        assert g.set_index("epoch").loc[trials.loc[tid, "best_epoch"], "val_acc"] == trials.loc[tid, "val_acc"]
        assert (g["train_s"] > 0).all() and g["train_loss"].notna().all()
    # written in the same commit as the other two files
    ids = {
        pq.read_schema(tiny_run / n).metadata[b"robust_ray.commit"]
        for n in ("trials.parquet", "metrics.parquet", "history.parquet")
    }
    assert len(ids) == 1
    assert json.loads((tiny_run / "results.json").read_text())["rows"]["history"] == len(h)


def test_tables_are_friendly_to_sql(tiny_run):
    """Accuracies are exact ratios of counts; the hyphenated suite has an unquoted alias."""
    trials = pq.read_table(tiny_run / "trials.parquet").to_pandas()
    m = pq.read_table(tiny_run / "metrics.parquet").to_pandas()
    assert (m["accuracy"] == m["n_correct"] / m["n"]).all()  # float64 of correct / n, bit for bit
    assert trials["acc_mnist_c"].tolist() == trials["acc_mnist-c"].tolist()
    assert list(trials.columns).index("acc_mnist_c") == list(trials.columns).index("acc_mnist-c") + 1
    duckdb = pytest.importorskip("duckdb")
    folder = str(tiny_run).replace("'", "''")
    got = duckdb.sql(f"SELECT trial_id, acc_mnist_c FROM '{folder}/trials.parquet' ORDER BY trial_id").fetchall()
    assert got == sorted(zip(trials["trial_id"], trials["acc_mnist-c"]))
    counts = duckdb.sql(
        f"SELECT trial_id, sum(n_correct) / sum(n) AS acc FROM '{folder}/metrics.parquet' "
        "WHERE suite = 'mnist-c' GROUP BY trial_id ORDER BY trial_id"
    ).fetchall()
    assert [a for _, a in counts] == trials.sort_values("trial_id")["acc_mnist-c"].tolist()


def test_the_report_draws_learning_curves_per_factor_level(tiny_run, tmp_path):
    from robust_ray.analysis.report import analyze

    out = analyze(str(tiny_run), tmp_path / "analysis")
    curves = sorted(p.name for p in (out / "plots").glob("*learning_curves*"))
    assert curves == [
        "default__tiny__learning_curves__gaussian_l2__val_acc.png",
        "default__tiny__learning_curves__label_error__val_acc.png",
    ]
    report = (out / "report.md").read_text()
    assert "tiny: learning curves" in report and "Learning curves (validation accuracy" in report


def test_outputs_are_complete_files_only(tiny_run):
    names = {p.name for p in tiny_run.iterdir()}
    assert {"trials.parquet", "metrics.parquet", "sweep.json"} <= names
    assert not [n for n in names if ".tmp" in n]
    assert json.loads((tiny_run / "sweep.json").read_text())["name"] == "tiny"


def test_rerun_into_same_folder_needs_resume(tiny_run):
    from robust_ray.errors import UserError

    with pytest.raises(UserError, match="--resume"):
        run_sweep(
            parse_spec(yaml.safe_load(yaml.safe_dump(TINY))), Execution(output=str(tiny_run), log=lambda *_: None)
        )


WIDE = {
    "name": "wide",
    "architectures": ["lenet5"],
    "training": {"max_epochs": 1, "patience": 1},
    "design": {
        "type": "one_factor",
        "factors": {
            "fgsm_l2": {"levels": [2.0], "per_class": 10},
            "sp>gaussian": {"levels": [0.05], "first": 0.1, "per_class": 10},
        },
    },
    "suites": {
        "mnist-a": {"levels": [1.0, 2.0], "n": 100},
        "two-factor-69": {"levels": [1, 2, 50], "n": 100},
        "corruptions": {"levels": [1], "n": 20},
        "pixel": {"levels": [4], "n": 100},
    },
}


def test_reference_model_fgsm_and_named_condition_suites_run_in_a_sweep(ray_session, tmp_path):
    out = run_sweep(parse_spec(WIDE), Execution(output=str(tmp_path / "out"), log=lambda *_: None))
    trials = pq.read_table(f"{out}/trials.parquet").to_pandas()
    assert (trials["status"] == "ok").all() and len(trials) == 3
    m = pq.read_table(f"{out}/metrics.parquet").to_pandas()
    per_trial = m.groupby("suite")["condition"].nunique().to_dict()
    assert per_trial["mnist-a"] == 2 and per_trial["two-factor-69"] == 3 and per_trial["corruptions"] == 18
    assert set(m.loc[m.suite == "two-factor-69", "condition"]) == {"CLEAN", "SP0GA0.1", "SP0.2RL60"}
    # FGSM at L2 = 2 against the clean model hurts that very model more than L2 = 1
    # sp>gaussian has no identity level: NaN where it was not applied
    clean = trials.loc[(trials["fgsm_l2"] == 0) & trials["sp>gaussian"].isna(), "trial_id"].item()
    a = m[(m.trial_id == clean) & (m.suite == "mnist-a")].set_index("level")["accuracy"]
    assert a[2.0] < a[1.0]


def test_a_diverging_trial_is_recorded_as_diverged_and_the_sweep_finishes(ray_session, tmp_path):
    spec = {
        "name": "boom",
        "architectures": ["lenet5"],
        "training": {"max_epochs": 2, "lr": 1.0e6, "optimizer": "sgd", "momentum": 0.0},
        "design": {"type": "one_factor", "factors": {"label_error": {"levels": [0.2]}}},
        "suites": {"mnist-test": {"n": 100}},
        "execution": {"max_concurrent": 2},
    }
    out = run_sweep(parse_spec(spec), Execution(output=str(tmp_path / "out"), log=lambda *_: None))
    trials = pq.read_table(f"{out}/trials.parquet").to_pandas()
    assert (trials["status"] == "diverged").all() and trials["acc_mnist-test"].isna().all()
    assert (trials["epochs"] >= 1).all()
    # its last metrics: the non-finite loss that stopped it, and that no epoch's weights were kept
    assert (~np.isfinite(trials["train_loss"])).all() and (trials["best_epoch"] == 0).all()


def test_ray_experiment_analysis_reads_the_tune_folder_by_its_absolute_path(tiny_run):
    """The README's Ray-tools line: Tune's ExperimentAnalysis on OUT/tune, resolved."""
    from ray.tune import ExperimentAnalysis

    ea = ExperimentAnalysis(str((tiny_run / "tune").resolve()))
    ours = pq.read_table(tiny_run / "trials.parquet").to_pandas()["trial_id"].tolist()
    df = ea.dataframe()
    assert len(ea.trials) == len(ours) == 3
    assert sorted(df["config/trial/trial_id"]) == sorted(ours)
    assert all(t.trial_id not in ours for t in ea.trials)  # Tune's own ids, ours in the config
