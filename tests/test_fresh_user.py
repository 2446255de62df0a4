"""What the README promises a new user: its commands, a CLI that explains itself, results
readable while a sweep runs, and a resume that says what changed."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from robust_ray import __version__
from robust_ray.cli import main, parser

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()

SPEC = """
name: partial
dataset: {name: mnist-5k}
architectures: [lenet5]
training: {max_epochs: 3, patience: 3}
design:
  type: one_factor
  factors:
    gaussian_l2: {levels: [2.0, 4.0], per_class: 20}
    label_error: {levels: [0.1, 0.2, 0.3]}
suites:
  mnist-test: {n: 200}
"""


def readme_commands() -> list[str]:
    """The commands of the README's first code block (comments dropped)."""
    block = re.search(r"```bash\n(.*?)```", README, re.S).group(1)
    return [ln.strip() for ln in block.splitlines() if ln.strip() and not ln.strip().startswith("#")]


def test_ci_runs_exactly_the_readme_test_command_in_a_new_venv():
    install, tests = readme_commands()[:2]
    assert "python3 -m venv .venv" in tests and "pip install -e" in tests and "python -m pytest" in tests
    assert "robust-ray run sweeps/quickstart.yaml" in install and "robust-ray analyze" in install
    ci = (REPO / ".ci" / "run").read_text()
    assert tests in ci.splitlines()


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"robust-ray {__version__}"


def _options():
    sub = next(a for a in parser()._actions if a.dest == "command")
    for name, p in sub.choices.items():
        for action in p._actions:
            if action.dest != "help":
                yield name, action


def test_every_argument_has_help_and_every_option_is_in_the_readme_table():
    table = README[README.index("## Commands") :]
    table = table[: table.index("\n## ", 4)]
    for command, action in _options():
        assert action.help, f"{command} {action.dest}: no help text"
        for flag in action.option_strings:
            row = next((ln for ln in table.splitlines() if ln.startswith(f"| `robust-ray {command}")), "")
            assert flag in row, f"README's command table lacks {command} {flag}"


def test_validate_of_a_missing_file_answers_before_torch_is_imported():
    code = ("import sys\nfrom robust_ray.cli import main\nrc = main(['validate', 'no/such.yaml'])\n"
            "print(rc, 'torch' in sys.modules, 'ray' in sys.modules)")  # fmt: skip
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert r.stdout.split() == ["2", "False", "False"], r.stdout + r.stderr
    assert "no/such.yaml: cannot read the spec" in r.stderr


def test_resume_of_a_changed_spec_names_the_keys_that_changed(tmp_path, capsys):
    spec, out = tmp_path / "spec.yaml", tmp_path / "out"
    spec.write_text(SPEC)
    (out / "tune").mkdir(parents=True)
    (out / "tune" / "tuner.pkl").write_bytes(b"")  # stands in for an interrupted Tune experiment
    import json

    from robust_ray.config import load_spec

    old = load_spec(spec).model_dump(mode="json")
    (out / "sweep.json").write_text(json.dumps(old))
    spec.write_text(
        SPEC.replace("levels: [2.0, 4.0]", "levels: [2.0, 4.0, 6.0]").replace("max_epochs: 3", "max_epochs: 4")
    )
    assert main(["run", str(spec), "--output", str(out), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "design.factors.gaussian_l2.levels ([2.0, 4.0] -> [2.0, 4.0, 6.0])" in err, err
    assert "training.max_epochs (3 -> 4)" in err, err


def test_progress_lines_name_the_trial_and_wait_for_a_pace_before_an_eta():
    from robust_ray.runtime import Progress
    from robust_ray.sweep import trial_label

    assert (
        trial_label({"trial_id": "t0003", "levels": {"gaussian_l2": 6.0, "label_error": 0.0}}) == "t0003 gaussian_l2=6"
    )
    assert (
        trial_label({"trial_id": "t0000", "levels": {"gaussian_l2": None}, "seed": 2}, ("seed",))
        == "t0000 clean seed 2"
    )

    class T:
        def __init__(self, tid, status, level):
            self.status, self.config = status, {"trial": {"trial_id": tid, "levels": {"label_error": level}}}

    lines = []
    trials = [T(f"t{i:04d}", "RUNNING" if i < 2 else "PENDING", 0.1 * i) for i in range(6)]
    p = Progress(len(trials), "acc_x", lines.append, trial_label)
    p.on_trial_complete(0, trials, trials[1])
    assert lines[-1].startswith("t0001 label_error=0.1 done | trials: 1 done, 1 running")
    assert "ETA after the first trials" in lines[-1]
    trials[1].status = "TERMINATED"
    for i in (0, 2):
        trials[i].status = "RUNNING"
    time.sleep(0.01)
    p.on_trial_complete(0, trials, trials[0])
    # two trials ran at once: one interval between their finishes is not yet a pace
    assert "ETA after the first trials" in lines[-1], lines[-1]
    trials[0].status = "TERMINATED"
    p.on_trial_error(0, trials, trials[2])
    assert lines[-1].startswith("t0002 label_error=0.2 failed | trials: 2 done, 0 running, 1 failed of 6")
    assert re.search(r"ETA \d+s", lines[-1]), lines[-1]


@pytest.mark.slow
def test_results_are_readable_while_the_sweep_runs(tmp_path):
    """A real ``robust-ray run`` in a subprocess: before it ends, trials.parquet and
    metrics.parquet already hold the finished trials (the rest ``pending``/``running``),
    and ``analyze`` reports them as partial; at the end every trial is ok."""
    spec, out = tmp_path / "spec.yaml", tmp_path / "out"
    spec.write_text(SPEC)
    cmd = [sys.executable, "-u", "-m", "robust_ray", "run", str(spec), "--output", str(out), "--num-cpus", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
    seen, snapshot = [], None
    try:
        for line in proc.stdout:
            seen.append(line)
            if " done | trials: " in line:
                time.sleep(0.5)
                trials = pd.read_parquet(out / "trials.parquet")
                if proc.poll() is None and (trials["status"] == "ok").any():
                    snapshot = tmp_path / "snapshot"
                    shutil.copytree(out, snapshot, ignore=shutil.ignore_patterns("tune"))
                    break
        rest, _ = proc.communicate(timeout=600)
    finally:
        proc.kill()
    seen.append(rest)
    log = "".join(seen)
    assert snapshot is not None, log
    assert proc.returncode == 0, log
    assert re.search(r"^t0001 gaussian_l2=2 done \| trials: ", log, re.M), log
    assert "Token authentication" not in log  # our own local Ray: token auth on, and quiet

    trials = pd.read_parquet(snapshot / "trials.parquet")
    metrics = pd.read_parquet(snapshot / "metrics.parquet")
    finished = trials[trials["status"] == "ok"]
    assert len(trials) == 6 and 1 <= len(finished) < 6
    assert set(trials["status"]) <= {"ok", "running", "pending"}
    assert set(metrics["trial_id"]) == set(finished["trial_id"])
    assert trials.loc[trials["status"] != "ok", "error"].isna().all()
    assert main(["analyze", str(snapshot), "--no-plots"]) == 0
    report = (snapshot / "analysis" / "report.md").read_text()
    assert f"partial: {len(finished)} of 6 trials" in report

    final = pd.read_parquet(out / "trials.parquet")
    assert (final["status"] == "ok").all() and len(final) == 6
    # it ends with the summary (issue 15 item 6): best and worst per suite, then what to run next
    assert re.search(r"^6 of 6 trials ok$", log, re.M) and re.search(
        r"^mnist-test: best lenet5 .*; worst lenet5 ", log, re.M
    ), log
    assert f"next: robust-ray analyze {out}" in log
