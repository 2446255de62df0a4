"""Ctrl-C and SIGTERM on a real ``robust-ray run`` (issue 14): exit 130 / 143, finished
trials kept, the rest ``interrupted`` with no metrics, the resume command as the last line,
and a resume that finishes the sweep; a failed trial makes the run exit 1."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

SPEC = """
name: signals
dataset: {name: mnist-5k}
architectures: [lenet5]
training: {max_epochs: 8, patience: 8}  # seconds a trial: the signal lands mid-sweep
design:
  type: one_factor
  factors:
    label_error: {levels: [0.1, 0.2, 0.3]}
suites:
  mnist-test: {n: 200}
"""
N_TRIALS = 4


def start(tmp_path, *extra):
    spec, out = tmp_path / "spec.yaml", tmp_path / "out"
    spec.write_text(SPEC)
    cmd = [sys.executable, "-u", "-m", "robust_ray", "run", str(spec), "--output", str(out), "--num-cpus", "1", *extra]
    p = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"}
    )
    return p, spec, out


def wait_for(p, text: str, timeout: float = 300) -> list[str]:
    lines, t0 = [], time.time()
    while time.time() - t0 < timeout:
        line = p.stdout.readline()
        if not line:
            break
        lines.append(line)
        if text in line:
            return lines
    p.kill()
    pytest.fail(f"never saw {text!r}; stdout:\n{''.join(lines)}\nstderr:\n{p.stderr.read()}")


def finish(p, timeout: float = 180) -> tuple[int, str, str]:
    out, err = p.communicate(timeout=timeout)
    return p.returncode, out, err


@pytest.mark.slow
@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_a_signal_keeps_finished_trials_marks_the_rest_interrupted_and_resumes(tmp_path, sig, code):
    p, spec, out = start(tmp_path)
    wait_for(p, " done | trials: 1 done")
    p.send_signal(sig)
    rc, stdout, stderr = finish(p)
    assert rc == code, stderr
    assert "Traceback" not in stderr and "Tuner.restore" not in stderr + stdout and "FileNotFoundError" not in stderr
    last = stdout.strip().splitlines()[-1]
    assert last.startswith(f"robust-ray run {spec} --output {out} --resume"), stdout
    t = pd.read_parquet(out / "trials.parquet")
    m = pd.read_parquet(out / "metrics.parquet")
    done, stopped = t[t["status"] == "ok"], t[t["status"] == "interrupted"]
    assert len(done) >= 1 and len(stopped) >= 1 and len(done) + len(stopped) == N_TRIALS, t["status"].tolist()
    assert stopped["val_acc"].isna().all() and stopped["error"].isna().all()
    assert set(m["trial_id"]) == set(done["trial_id"])  # no partial metrics of an interrupted trial
    assert not (out / ".robust_ray.lock").exists()

    argv = last.split()
    assert argv[0] == "robust-ray"
    if sig != signal.SIGINT:
        return  # the resume after a signal is one path, run once (SIGINT): minutes of CI saved
    r = subprocess.run([sys.executable, "-m", "robust_ray", *argv[1:]], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    after = pd.read_parquet(out / "trials.parquet")
    assert (after["status"] == "ok").all() and len(after) == N_TRIALS
    kept = after.set_index("trial_id").loc[done["trial_id"], "started_at"]
    assert (kept.values == done.set_index("trial_id")["started_at"].values).all()  # not rerun


@pytest.mark.slow
def test_a_second_ctrl_c_exits_at_once(tmp_path):
    p, _, _ = start(tmp_path)
    wait_for(p, " done | trials: 1 done")
    p.send_signal(signal.SIGINT)
    time.sleep(0.2)
    t0 = time.time()
    p.send_signal(signal.SIGINT)
    rc, _, stderr = finish(p, timeout=30)
    assert rc == 130 and time.time() - t0 < 15, stderr
    assert "again: exiting at once" in stderr


SLOW_START = """
name: slow-start
dataset: {name: mnist-5k}
architectures: [lenet5]
training: {max_epochs: 40, patience: 40}  # the reference model FGSM needs trains for a while
design: {type: one_factor, factors: {fgsm_l2: {levels: [1.0], per_class: 50}}}
suites: {mnist-test: {n: 100}}
"""


@pytest.mark.slow
def test_ctrl_c_during_start_up_stops_before_any_trial(tmp_path):
    spec, out = tmp_path / "slow.yaml", tmp_path / "out"
    spec.write_text(SLOW_START)
    p = subprocess.Popen([sys.executable, "-u", "-m", "robust_ray", "run", str(spec), "--output", str(out)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    wait_for(p, "datasets on mnist-5k")  # planned; Ray starts and the reference model trains next
    time.sleep(10)
    t0 = time.time()
    p.send_signal(signal.SIGINT)
    rc, stdout, stderr = finish(p, timeout=120)
    assert rc == 130 and "Traceback" not in stderr, stderr
    assert time.time() - t0 < 30, "Ctrl-C waited for the datasets to be built"
    assert "trials:" not in stdout
    assert not (out / "trials.parquet").exists()


def test_a_second_driver_on_the_same_output_is_refused_at_once(tmp_path):
    from robust_ray.lock import OutputLock
    from robust_ray.storage import Storage

    spec, out = tmp_path / "spec.yaml", tmp_path / "out"
    spec.write_text(SPEC)
    with OutputLock(Storage(str(out)), "signals"):  # as a running driver holds it
        t0 = time.time()
        r = subprocess.run([sys.executable, "-m", "robust_ray", "run", str(spec), "--output", str(out)],
                           capture_output=True, text=True, timeout=120)  # fmt: skip
    assert r.returncode == 2 and time.time() - t0 < 60
    assert f"is in use by robust-ray pid {os.getpid()}" in r.stderr and "Traceback" not in r.stderr


def test_a_fresh_run_refuses_another_sweeps_results(tmp_path, capsys):
    from robust_ray.cli import main

    spec, out = tmp_path / "spec.yaml", tmp_path / "out"
    spec.write_text(SPEC)
    out.mkdir()
    (out / "sweep.json").write_text(json.dumps({"name": "older"}))
    (out / "analysis").mkdir()
    assert main(["run", str(spec), "--output", str(out)]) == 2
    assert "already holds the results of sweep 'older'" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["analysis", "sweep.json"]
