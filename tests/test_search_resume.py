"""A search whose driver is killed resumes with --resume: finished trials are kept, the
study goes on from the journal (the sampler knows every earlier point) to the full budget."""

import glob
import json
import os
import signal
import subprocess
import sys
import time

import optuna
import pandas as pd
import pytest

from robust_ray.search.study import open_storage

SPEC = """
name: resume-search
dataset: {name: mnist-5k}
architectures: [lenet5]
training: {max_epochs: 2, patience: 1}
search:
  space:
    fgsm_l2: {low: 0.0, high: 6.0, step: 1.0, per_class: 20}
  objectives: [{metric: acc_mnist-a}]
  trials: 5
  concurrency: 1
suites:
  mnist-test: {n: 200}
  mnist-a: {levels: [1.0, 2.0], n: 200}
"""


def cli(*args: str) -> list[str]:
    return [sys.executable, "-u", "-m", "robust_ray", "search", *args, "--num-cpus", "1"]


def finished_in_saved_state(tune_dir: str) -> dict[str, float]:
    """trial folder -> started_at of the trials the newest experiment state records as done."""
    newest = max(glob.glob(f"{tune_dir}/experiment_state-*.json"), key=os.path.getmtime)
    out = {}
    for trial_json, runtime_json in json.load(open(newest))["trial_data"]:
        trial, runtime = json.loads(trial_json), json.loads(runtime_json)
        if trial["status"] == "TERMINATED":
            out[trial["custom_dirname"]] = runtime["last_result"]["started_at"]
    return out


@pytest.mark.slow
def test_search_driver_killed_then_resumed_continues_the_study(tmp_path):
    spec, out = tmp_path / "spec.yaml", tmp_path / "out"
    spec.write_text(SPEC)
    driver = subprocess.Popen(
        cli(str(spec), "--output", str(out)), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    for line in driver.stdout:
        if "2 done" in line:
            break
    time.sleep(2.5)  # past one experiment-state save period
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()
    assert not (out / "trials.parquet").exists()
    kept = finished_in_saved_state(str(out / "tune"))
    assert len(kept) >= 2

    done = subprocess.run(cli(str(spec), "--output", str(out), "--resume"), capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    trials = pd.read_parquet(out / "trials.parquet").set_index("trial_id")
    assert len(trials) == 5 and (trials["status"] == "ok").all()
    for tid, started in kept.items():  # not rerun: the same start time as before the kill
        assert trials.loc[tid, "started_at"].timestamp() == pytest.approx(started, abs=1e-3)
    assert trials["fgsm_l2"].nunique() == 5  # the resumed sampler knew the points tried before

    study = optuna.load_study(study_name="resume-search", storage=open_storage(str(out / "study.journal")))
    complete = {t.number: t for t in study.trials if t.state.name == "COMPLETE"}
    assert sorted(complete) == sorted(trials["optuna_number"])
    assert not [t for t in study.trials if t.state.name == "RUNNING"]
    for n, row in trials.set_index("optuna_number").iterrows():
        assert complete[n].params["fgsm_l2"] == row["fgsm_l2"] and complete[n].value == pytest.approx(row["acc_mnist-a"])


def test_resume_refuses_a_changed_spec_and_a_missing_search(tmp_path, capsys):
    from robust_ray.cli import main

    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    assert main(["search", str(spec), "--output", str(tmp_path / "none"), "--resume"]) == 2
    assert "no interrupted search" in capsys.readouterr().err
    (tmp_path / "out" / "tune").mkdir(parents=True)
    assert main(["search", str(spec), "--output", str(tmp_path / "out")]) == 2
    assert "already holds a search" in capsys.readouterr().err
