"""A sweep whose driver is killed resumes with --resume without rerunning finished trials."""

import sys

import pytest
from kill_driver import kill_then_resume

SPEC = """
name: resume
dataset: {name: mnist-5k}
architectures: [lenet5]
training: {max_epochs: 6, patience: 6}  # a few seconds a trial: the kill lands mid-sweep
design:
  type: one_factor
  factors:
    label_error: {levels: [0.1, 0.2, 0.3]}
suites:
  mnist-test: {n: 200}
"""


def cli(*args: str) -> list[str]:
    return [sys.executable, "-u", "-m", "robust_ray", "run", *args, "--num-cpus", "1"]


@pytest.mark.slow
def test_driver_killed_then_resumed_finishes_without_rerunning(tmp_path):
    spec, out = tmp_path / "spec.yaml", tmp_path / "out"
    spec.write_text(SPEC)
    trials = kill_then_resume(cli(str(spec), "--output", str(out)), out)
    assert len(trials) == 4 and (trials["status"] == "ok").all()


def test_resume_refuses_a_changed_spec_and_a_missing_sweep(tmp_path):
    from robust_ray.cli import main

    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    assert main(["run", str(spec), "--output", str(tmp_path / "none"), "--resume"]) == 2
    (tmp_path / "out" / "tune").mkdir(parents=True)
    assert main(["run", str(spec), "--output", str(tmp_path / "out")]) == 2
