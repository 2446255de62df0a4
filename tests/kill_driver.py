"""Kill a ``robust-ray run``/``search`` driver once Tune's saved experiment records two
finished trials (and the driver still has work left), then resume it: the resume tests."""

from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest


def saved_done(tune_dir: Path) -> dict[str, float]:
    """trial folder -> started_at of the trials the newest experiment state records as done."""
    states = glob.glob(f"{tune_dir}/experiment_state-*.json")
    if not states:
        return {}
    try:
        data = json.load(open(max(states, key=os.path.getmtime)))
    except ValueError:  # caught mid-write
        return {}
    out = {}
    for trial_json, runtime_json in data["trial_data"]:
        trial, runtime = json.loads(trial_json), json.loads(runtime_json)
        if trial["status"] == "TERMINATED":
            out[trial["custom_dirname"]] = runtime["last_result"]["started_at"]
    return out


def kill_after_two_saved(cmd: list[str], out: Path) -> dict[str, float]:
    """Start ``cmd``, SIGKILL its process group once two finished trials are saved; return
    those trials (folder -> started_at)."""
    driver = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    seen = []
    for line in driver.stdout:
        seen.append(line)
        if "2 done" in line:
            break
    deadline = time.time() + 60
    while len(saved_done(out / "tune")) < 2 and time.time() < deadline:  # Tune saves every 2 s
        time.sleep(0.2)
    assert driver.poll() is None, "the driver ended before it could be killed:\n" + "".join(seen)
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()
    kept = saved_done(out / "tune")
    assert len(kept) >= 2, "".join(seen)
    return kept


def kill_then_resume(cmd: list[str], out: Path) -> pd.DataFrame:
    """Kill ``cmd`` (which writes to ``out``) mid-run, rerun it with ``--resume``; return the
    trials table, having checked that the kill left no final results (a sweep's partial files
    hold unfinished trials; a search writes its files at the end) and that the trials
    finished before it were kept, not rerun (the same start time)."""
    kept = kill_after_two_saved(cmd, out)
    if (out / "trials.parquet").exists():
        partial = pd.read_parquet(out / "trials.parquet")
        assert partial["status"].isin(["pending", "running"]).any(), partial["status"].tolist()
    done = subprocess.run([*cmd, "--resume"], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    trials = pd.read_parquet(out / "trials.parquet").set_index("trial_id")
    for tid, started in kept.items():
        assert trials.loc[tid, "started_at"].timestamp() == pytest.approx(started, abs=1e-3)
    return trials
