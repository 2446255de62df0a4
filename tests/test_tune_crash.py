"""When Ray Tune's own loop fails mid-run (seen: the OOM killer took trial workers and the
controller re-raised OutOfMemoryError), the CLI says so in one message, keeps what was
written, prints the resume command and exits 1: no driver traceback."""

from __future__ import annotations

import robust_ray.sweep as sweep
from robust_ray.cli import main

SPEC = """
name: crash
dataset: {name: mnist-5k}
architectures: [lenet5]
design: {type: one_factor, factors: {label_error: {levels: [0.1]}}}
suites: {mnist-test: {n: 100}}
"""


class Crashing:
    def fit(self):
        raise RuntimeError("Caught unexpected exception: ray.exceptions.OutOfMemoryError: Task was killed")

    def __getattr__(self, name):  # the Tuner's other attributes are not needed to crash
        raise AttributeError(name)


def test_a_tune_crash_exits_1_with_the_resume_command(ray_session, tmp_path, capsys, monkeypatch):
    spec, out = tmp_path / "spec.yaml", tmp_path / "out"
    spec.write_text(SPEC)
    monkeypatch.setattr(sweep, "make_tuner", lambda *a, **k: Crashing())
    assert main(["run", str(spec), "--output", str(out)]) == 1
    captured = capsys.readouterr()
    assert "Ray Tune stopped: RuntimeError: Caught unexpected exception" in captured.err
    assert "Traceback" not in captured.err
    assert captured.out.strip().splitlines()[-1] == f"robust-ray run {spec} --output {out} --resume"
    assert (out / "trials.parquet").exists() and not (out / ".robust_ray.lock").exists()
