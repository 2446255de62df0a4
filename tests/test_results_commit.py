"""The two results files are one commit: a reader never pairs trials of one write with
metrics of another, and every write reaches the disk before it is renamed into place."""

from __future__ import annotations

import json
import os

import pandas as pd

from robust_ray.results import (
    COMMITS_DIR,
    HISTORY,
    MANIFEST,
    commit_of,
    history_rows,
    read_files,
    read_pair,
    trial_rows,
    write_results,
)
from robust_ray.storage import Storage

PLANS = [{"trial_id": f"t{i:04d}", "arch": "lenet5", "seed": 0, "levels": {"gaussian_l2": float(i)}} for i in range(3)]


def _outcome(acc: float) -> dict:
    history = [{"epoch": e, "train_loss": 1.0 / e, "val_acc": acc, "train_s": 0.1} for e in (1, 2)]
    return {"status": "ok", "val_acc": acc, "acc_clean": acc, "history_json": json.dumps(history),
            "metrics_json": json.dumps([["clean", "0", 0.0, acc, 100]])}  # fmt: skip


def _write(folder, finished: int) -> str:
    outcomes = {p["trial_id"]: _outcome(0.9) for p in PLANS[:finished]}
    return write_results(
        Storage(str(folder)), *trial_rows("s", PLANS, outcomes, ["clean"], running=set()), history_rows(PLANS, outcomes)
    )


def test_both_files_and_the_manifest_carry_one_commit_id(tmp_path):
    commit = _write(tmp_path, 2)
    assert commit_of(str(tmp_path / "trials.parquet")) == commit_of(str(tmp_path / "metrics.parquet")) == commit
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    assert manifest["commit"] == commit and manifest["rows"] == {"trials": 3, "metrics": 2, "history": 4}
    assert commit_of(str(tmp_path / HISTORY)) == commit
    assert read_pair(str(tmp_path)) == (str(tmp_path / "trials.parquet"), str(tmp_path / "metrics.parquet"))


def test_only_the_last_commit_is_kept(tmp_path):
    _write(tmp_path, 1)
    last = _write(tmp_path, 3)
    assert os.listdir(tmp_path / COMMITS_DIR) == [last]


def test_a_crash_between_the_two_renames_is_read_as_the_committed_pair(tmp_path):
    _write(tmp_path, 1)
    stale_metrics = (tmp_path / "metrics.parquet").read_bytes()
    _write(tmp_path, 3)
    (tmp_path / "metrics.parquet").write_bytes(stale_metrics)  # trials renamed, metrics not yet
    trials, metrics = read_pair(str(tmp_path))
    assert COMMITS_DIR in trials and COMMITS_DIR in metrics
    t, m = pd.read_parquet(trials), pd.read_parquet(metrics)
    assert (t["status"] == "ok").sum() == 3 and len(m) == 3


def test_files_written_by_hand_are_read_as_they_are(tmp_path):
    _write(tmp_path, 2)
    df = pd.read_parquet(tmp_path / "trials.parquet")
    df.to_parquet(tmp_path / "trials.parquet")  # no commit id: someone edited the table
    assert read_pair(str(tmp_path))[0] == str(tmp_path / "trials.parquet")


def test_local_writes_are_fsynced_before_the_rename(tmp_path, monkeypatch):
    synced, renamed = [], []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (renamed.append(len(synced)), real_replace(a, b))[1])
    Storage(str(tmp_path)).write_bytes("x.bin", b"data")
    assert renamed == [1] and len(synced) == 2  # the file before the rename, the folder after
    assert (tmp_path / "x.bin").read_bytes() == b"data"


def test_a_crash_before_the_history_rename_is_read_as_the_committed_files(tmp_path):
    _write(tmp_path, 1)
    stale = (tmp_path / HISTORY).read_bytes()
    _write(tmp_path, 3)
    (tmp_path / HISTORY).write_bytes(stale)  # trials and metrics renamed, history not yet
    files = read_files(str(tmp_path))
    assert all(COMMITS_DIR in files[n] for n in ("trials.parquet", "metrics.parquet", HISTORY))
    assert len(pd.read_parquet(files[HISTORY])) == 3 * 2


def test_metrics_carry_n_correct_and_exact_ratios(tmp_path):
    outcomes = {"t0000": {"status": "ok", "metrics_json": json.dumps([["clean", "0", 0.0, 961 / 1000, 1000],
                                                                      ["old", "0", 0.0, 0.960999995470047, 1000]])}}  # fmt: skip
    write_results(Storage(str(tmp_path)), *trial_rows("s", PLANS[:1], outcomes))
    m = pd.read_parquet(tmp_path / "metrics.parquet")
    assert m["n_correct"].tolist() == [961, 961]  # also from a float32 mean of an older trial
    assert m["accuracy"].iloc[0] == 0.961
