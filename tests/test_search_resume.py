"""A search whose driver is killed resumes with --resume: finished trials are kept, the
study goes on from the journal (the sampler knows every earlier point) to the full budget."""

import json
import sys

import optuna
import pytest
from kill_driver import kill_then_resume

from robust_ray.search.study import open_storage

SPEC = """
name: resume-search
dataset: {name: mnist-5k}
architectures: [lenet5]
training: {max_epochs: 6, patience: 6}  # a few seconds a trial: the kill lands mid-search
search:
  space:
    fgsm_l2: {low: 0.0, high: 6.0, step: 1.0, per_class: 20}
  objectives: [{metric: acc_mnist-a}]
  trials: 4
  concurrency: 1
suites:
  mnist-test: {n: 200}
  mnist-a: {levels: [1.0, 2.0], n: 200}
"""


def cli(*args: str) -> list[str]:
    return [sys.executable, "-u", "-m", "robust_ray", "search", *args, "--num-cpus", "1"]


@pytest.mark.slow
def test_search_driver_killed_then_resumed_continues_the_study(tmp_path):
    spec, out = tmp_path / "spec.yaml", tmp_path / "out"
    spec.write_text(SPEC)
    trials = kill_then_resume(cli(str(spec), "--output", str(out)), out)
    # the 4 Tune trials, and any that finished after Tune's last save (the study counts them)
    assert len(trials) >= 4 and (trials["status"] == "ok").all()
    assert trials["fgsm_l2"].nunique() == len(trials)  # the resumed sampler knew the points tried before

    study = optuna.load_study(study_name="resume-search", storage=open_storage(str(out / "study.journal")))
    complete = {t.number: t for t in study.trials if t.state.name == "COMPLETE"}
    assert sorted(complete) == sorted(trials["optuna_number"])
    assert not [t for t in study.trials if t.state.name == "RUNNING"]
    for n, row in trials.set_index("optuna_number").iterrows():
        assert complete[n].params["fgsm_l2"] == row["fgsm_l2"] and complete[n].value == pytest.approx(
            row["acc_mnist-a"]
        )


def test_resume_refuses_a_changed_spec_and_a_missing_search(tmp_path, capsys):
    from robust_ray.cli import main

    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    assert main(["search", str(spec), "--output", str(tmp_path / "none"), "--resume"]) == 2
    assert "no interrupted search" in capsys.readouterr().err
    (tmp_path / "out" / "tune").mkdir(parents=True)
    assert main(["search", str(spec), "--output", str(tmp_path / "out")]) == 2
    assert "already holds a search" in capsys.readouterr().err


def test_a_trial_finished_after_tunes_last_save_is_read_back(tmp_path):
    """The journal is written when a trial finishes, Tune's state every few seconds: a kill in
    between leaves a COMPLETE study trial Tune's restored experiment does not know."""
    from robust_ray.search.run import orphans
    from robust_ray.storage import Storage

    study = optuna.create_study(
        storage=open_storage(str(tmp_path / "study.journal")), study_name="s", direction="maximize"
    )
    dist = optuna.distributions.FloatDistribution(0.0, 6.0, step=1.0)
    for x in [1.0, 3.0, 5.0]:
        study.tell(study.ask({"fgsm_l2": dist}), x / 10)
    warm = optuna.trial.create_trial(params={"fgsm_l2": 2.0}, distributions={"fgsm_l2": dist}, value=0.2,
                                     user_attrs={"warm_start": "old"})  # fmt: skip
    study.add_trial(warm)  # number 3: not a trial of this search
    (tmp_path / "finished").mkdir()
    record = {"config": {"fgsm_l2": 5.0, "optuna_number": 2}, "metrics": {"acc_mnist-a": 0.5, "metrics_json": "[]"}}
    (tmp_path / "finished" / "t0002.json").write_text(json.dumps(record))
    notes = []
    found = orphans(Storage(str(tmp_path)), study, known={0}, log=notes.append)
    assert [o.config["optuna_number"] for o in found] == [2]  # t0001 has no record, t0003 is warm start
    assert found[0].metrics["acc_mnist-a"] == 0.5 and found[0].error is None
    assert len(notes) == 1 and "optuna trial 1" in notes[0]
