"""Issue 17: a finished sweep grows (levels, seeds, suites) without retraining what it holds.

Trials are content-addressed (plan.trial_key); ``run --extend`` trains only new keys, keeps
every old row, and evaluates kept models on suites they lack from their saved weights."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from robust_ray.cli import main
from robust_ray.config import parse_spec
from robust_ray.extend import plan_extension
from robust_ray.plan import make_plan
from robust_ray.results import trial_rows, write_results
from robust_ray.storage import Storage

BASE = {
    "name": "grow", "dataset": {"name": "mnist-5k"}, "architectures": ["lenet5"], "seeds": [0],
    "training": {"max_epochs": 1, "patience": 1, "batch_size": 128},
    "design": {"type": "one_factor", "factors": {"label_error": {"levels": [0.1, 0.2]}}},
    "suites": {"mnist-test": {"n": 200}},
}  # fmt: skip


def spec_of(**changes) -> dict:
    d = json.loads(json.dumps(BASE))
    for path, value in changes.items():
        *head, last = path.split("__")
        node = d
        for k in head:
            node = node[k]
        node[last] = value
    return d


def finished(spec_dict: dict, status: str = "ok", both: bool = False):
    """trials.parquet (and metrics.parquet) of a finished run of ``spec_dict`` (every trial ``status``)."""
    spec = parse_spec(spec_dict)
    plans = [t.to_dict() for t in make_plan(spec).trials]
    outcomes = {p["trial_id"]: {"status": status, "acc_mnist-test": 0.9, "started_at": 1.0e9,
                                "metrics_json": json.dumps([["mnist-test", "0", 0.0, 0.9, 200]])} for p in plans}  # fmt: skip
    frames = trial_rows(spec.name, plans, outcomes, list(spec.suites))
    return frames if both else frames[0]


def folder_of(tmp_path, spec_dict: dict):
    """An output folder holding a finished sweep of ``spec_dict`` (no training)."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "sweep.json").write_text(json.dumps(parse_spec(spec_dict).model_dump(mode="json")))
    write_results(Storage(str(out)), *finished(spec_dict, both=True))
    return out


def test_every_planned_trial_has_a_key_that_follows_what_makes_its_model():
    spec = parse_spec(BASE)
    keys = [t.key for t in make_plan(spec).trials]
    assert len(set(keys)) == len(keys) == 3
    assert keys == [t.key for t in make_plan(parse_spec(BASE)).trials]  # stable
    # a suite evaluates the model, it does not make it
    assert keys == [t.key for t in make_plan(parse_spec(spec_of(suites={"mnist-test": {"n": 100}}))).trials]
    # the training settings, the seed and the level do
    assert not set(keys) & {t.key for t in make_plan(parse_spec(spec_of(training__max_epochs=2))).trials}
    assert not set(keys) & {t.key for t in make_plan(parse_spec(spec_of(seeds=[1]))).trials}
    other = {
        t.key for t in make_plan(parse_spec(spec_of(design__factors={"label_error": {"levels": [0.1, 0.3]}}))).trials
    }
    assert len(set(keys) & other) == 2  # the clean trial and label_error=0.1 are the same models


def test_extend_plan_keeps_old_trials_and_numbers_new_ones_after_them():
    trials = finished(BASE)
    grown = parse_spec(spec_of(seeds=[0, 1], design__factors={"label_error": {"levels": [0.1, 0.2, 0.3, 0.4]}}))
    ext = plan_extension(grown, make_plan(grown), trials)
    assert sorted(ext.kept) == ["t0000", "t0001", "t0002"] and not ext.gone and not ext.retrain
    assert len(ext.train) == 7 and sorted(t.trial_id for t in ext.train) == [f"t{i:04d}" for i in range(3, 10)]
    assert len({t.trial_id for t in ext.plan.trials}) == 10


def test_a_changed_training_setting_retrains_everything_and_keeps_the_old_rows_out_of_spec():
    trials = finished(BASE)
    changed = parse_spec(spec_of(training__lr=0.01))
    ext = plan_extension(changed, make_plan(changed), trials)
    assert not ext.kept and len(ext.train) == 3 and sorted(ext.gone) == ["t0000", "t0001", "t0002"]
    assert "0 kept, 3 new" in ext.summary() and "3 no longer in the spec" in ext.summary()


def test_unfinished_trials_of_an_interrupted_extend_train_again_under_their_ids():
    trials = finished(BASE)
    trials.loc[trials["trial_id"] == "t0002", "status"] = "interrupted"
    ext = plan_extension(parse_spec(BASE), make_plan(parse_spec(BASE)), trials)
    assert [t.trial_id for t in ext.train] == ["t0002"] and sorted(ext.kept) == ["t0000", "t0001"]


def test_a_kept_trial_without_a_saved_model_retrains_for_a_new_suite_and_says_why():
    trials = finished(BASE)  # model_uri empty: models were not kept
    more = parse_spec(spec_of(suites={"mnist-test": {"n": 200}, "mnist-c": {"levels": [2.0], "n": 50}}))
    ext = plan_extension(more, make_plan(more), trials)
    assert len(ext.retrain) == 3 and all("no saved model" in why and "mnist-c" in why for why in ext.retrain.values())
    assert not ext.evaluate


def write_spec(path, d) -> str:
    import yaml

    path.write_text(yaml.safe_dump(d))
    return str(path)


@pytest.mark.slow
def test_extend_trains_exactly_the_new_trials_and_evaluates_kept_models(tmp_path, ray_session, capsys):
    out = tmp_path / "out"
    assert main(["run", write_spec(tmp_path / "a.yaml", BASE), "--output", str(out)]) == 0
    before = pd.read_parquet(out / "trials.parquet")
    weights = {p.name: p.read_bytes() for p in (out / "models").glob("*.safetensors")}
    grown = spec_of(seeds=[0, 1], design__factors={"label_error": {"levels": [0.1, 0.2, 0.3]}},
                    suites={"mnist-test": {"n": 200}, "mnist-c": {"levels": [2.0, 4.0], "n": 100}})  # fmt: skip
    b = write_spec(tmp_path / "b.yaml", grown)
    capsys.readouterr()
    assert main(["validate", b, "--output", str(out)]) == 0
    assert "extend: 3 kept, 5 new, 0 retrained, 3 kept-model evaluations on 1 suite(s)" in capsys.readouterr().out
    assert main(["run", b, "--output", str(out), "--extend"]) == 0
    log = capsys.readouterr().out
    assert "training 5 trial(s)" in log and log.count(" done | trials:") == 5  # only the new ones trained
    after = pd.read_parquet(out / "trials.parquet")
    assert len(after) == 8 and (after["status"] == "ok").all() and after["in_spec"].all()
    old = after.set_index("trial_id").loc[before["trial_id"]]
    assert (old["started_at"].to_numpy() == before["started_at"].to_numpy()).all()
    assert (old["trial_key"].to_numpy() == before["trial_key"].to_numpy()).all()
    assert {p.name: p.read_bytes() for p in (out / "models").glob("*.safetensors") if p.name in weights} == weights
    assert after["acc_mnist-c"].notna().all()  # kept models evaluated on the suite they lacked
    history = pd.read_parquet(out / "history.parquet")  # the kept trials' epochs carried over, the new ones added
    assert set(history["trial_id"]) == set(after["trial_id"]) and len(history) == after["epochs"].sum()
    m = pd.read_parquet(out / "metrics.parquet")
    assert (m["sweep"] == "grow").all() and len(m[m["suite"] == "mnist-c"]) == 8 * 2
    specs = json.loads((out / "sweep_history.json").read_text())
    assert [h["experiment"] for h in specs] == ["tune", "tune-1"] and (out / "tune").is_dir()
    assert json.loads((out / "sweep.json").read_text())["seeds"] == [0, 1]
    # shrinking the spec drops nothing: the trials it no longer holds are in_spec = false
    assert main(["run", write_spec(tmp_path / "c.yaml", BASE), "--output", str(out), "--extend"]) == 0
    last = pd.read_parquet(out / "trials.parquet")
    assert len(last) == 8 and sorted(last.loc[last["in_spec"], "trial_id"]) == ["t0000", "t0001", "t0002"]


def test_an_extend_on_another_dataset_is_refused_naming_the_key(tmp_path, capsys):
    out = folder_of(tmp_path, BASE)
    before = sorted(p.name for p in out.iterdir())
    d = spec_of(dataset={"name": "mnist"})
    assert main(["run", write_spec(tmp_path / "b.yaml", d), "--output", str(out), "--extend"]) == 2
    err = capsys.readouterr().err
    assert "b.yaml" in err and "dataset.name" in err
    assert sorted(p.name for p in out.iterdir()) == before


def test_an_extend_that_changes_what_a_suite_name_means_is_refused(tmp_path, capsys):
    out = folder_of(tmp_path, BASE)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    d = spec_of(suites={"mnist-test": {"n": 100}})
    assert main(["run", write_spec(tmp_path / "b.yaml", d), "--output", str(out), "--extend"]) == 2
    assert "suites.mnist-test" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before


def test_two_folders_read_together_join_on_sweep_and_trial_id(tmp_path):
    duckdb = pytest.importorskip("duckdb")
    for name in ("a", "b"):  # same trial ids t0000..t0002 in both folders
        out = tmp_path / name
        out.mkdir()
        write_results(Storage(str(out)), *finished(spec_of(name=f"sweep-{name}"), both=True))
    glob = str(tmp_path / "*")
    n = duckdb.sql(f"select count(*) from read_parquet('{glob}/metrics.parquet') m "
                   f"join read_parquet('{glob}/trials.parquet') t using (sweep, trial_id)").fetchall()[0][0]  # fmt: skip
    assert n == 6  # 3 metric rows per folder, each paired with its own trial only (a join on trial_id alone: 12)
