"""A sweep whose driver is killed resumes with --resume without rerunning finished trials."""

import glob
import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

SPEC = """
name: resume
dataset: {name: mnist-5k}
architectures: [lenet5]
training: {max_epochs: 2, patience: 1}
design:
  type: one_factor
  factors:
    label_error: {levels: [0.1, 0.2, 0.3, 0.4, 0.5]}
suites:
  mnist-test: {n: 200}
"""


def cli(*args: str) -> list[str]:
    return [sys.executable, "-u", "-m", "robust_ray", "run", *args, "--num-cpus", "1"]


def finished_in_saved_state(tune_dir: str) -> dict[str, float]:
    """trial_id -> started_at of the trials the newest experiment state records as done."""
    newest = max(glob.glob(f"{tune_dir}/experiment_state-*.json"), key=os.path.getmtime)
    out = {}
    for trial_json, runtime_json in json.load(open(newest))["trial_data"]:
        trial, runtime = json.loads(trial_json), json.loads(runtime_json)
        if trial["status"] == "TERMINATED":
            out[trial["custom_dirname"]] = runtime["last_result"]["started_at"]
    return out


@pytest.mark.slow
def test_driver_killed_then_resumed_finishes_without_rerunning(tmp_path):
    spec, out = tmp_path / "spec.yaml", tmp_path / "out"
    spec.write_text(SPEC)
    driver = subprocess.Popen(
        cli(str(spec), "--output", str(out)), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )
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
    assert len(trials) == 6 and (trials["status"] == "ok").all()
    for tid, started in kept.items():  # not rerun: the same start time as before the kill
        assert trials.loc[tid, "started_at"].timestamp() == pytest.approx(started, abs=1e-3)


def test_resume_refuses_a_changed_spec_and_a_missing_sweep(tmp_path):
    from robust_ray.cli import main

    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    assert main(["run", str(spec), "--output", str(tmp_path / "none"), "--resume"]) == 2
    (tmp_path / "out" / "tune").mkdir(parents=True)
    assert main(["run", str(spec), "--output", str(tmp_path / "out")]) == 2
