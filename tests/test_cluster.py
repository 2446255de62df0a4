"""A multi-node Ray cluster on one machine runs a sweep with datasets in the object store,
finishes every trial when a worker node dies mid-sweep, and packs fractional-GPU trials."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("cluster_sweep.py")


def run(out: Path, *flags: str) -> dict:
    r = subprocess.run([sys.executable, str(SCRIPT), str(out), *flags], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_sweep_survives_a_worker_node_dying(tmp_path):
    got = run(tmp_path / "out", "--kill")
    assert got["killed"], got["log"]
    assert got["status"] == ["ok"] * 4, (got["error"], got["log"])


@pytest.mark.slow
def test_without_retries_the_lost_trial_is_recorded_failed_with_its_error(tmp_path):
    got = run(tmp_path / "out", "--kill", "--max-failures", "0")
    assert got["killed"] and got["status"].count("failed") >= 1, got["log"]
    assert got["status"].count("ok") + got["status"].count("failed") == 4
    assert any("Failure #" in e and "actor died" in e for e in got["error"]), got["error"]  # Tune's error.txt


@pytest.mark.slow
def test_fractional_gpu_trials_share_one_card(tmp_path):
    """gpu: 0.5 packs floor(1/0.5) = 2 trials on the node's one GPU (a logical GPU here: the
    trials train on CPU), though its 4 CPUs would run 4: the GPU is what limits them."""
    got = run(tmp_path / "out", "--gpu-fraction", "0.5")
    assert got["status"] == ["ok"] * 4, (got["error"], got["log"])
    assert got["peak"] == 2, got["log"]
