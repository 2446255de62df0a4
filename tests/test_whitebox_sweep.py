"""White-box suites and kept models in a real sweep (issue 16): PGD attacks each trial's own
weights inside the trial, its robust accuracy per eps lands in metrics.parquet, and the kept
weights reload to the predictions that were evaluated."""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pandas as pd
import pytest
import torch

from robust_ray import data
from robust_ray.cli import main
from robust_ray.config import parse_spec
from robust_ray.runtime import Execution
from robust_ray.saved_models import load_model
from robust_ray.sweep import run_sweep
from robust_ray.train import correct_counts

SPEC = {
    "name": "whitebox",
    "dataset": {"name": "mnist-5k"},
    "architectures": ["lenet5"],
    "training": {"max_epochs": 2},
    "design": {"type": "one_factor", "factors": {"label_error": {"levels": [0.2]}}},
    "suites": {"mnist-test": {}, "pgd": {"norm": "linf", "eps": [0.05, 0.1, 0.2], "steps": 5, "n": 200}},
}


@pytest.fixture(scope="module")
def whitebox_run(ray_session, tmp_path_factory):
    out = tmp_path_factory.mktemp("wb") / "out"
    run_sweep(parse_spec(SPEC), Execution(output=str(out), log=lambda *_: None))
    return out


def test_pgd_robust_accuracy_is_below_clean_and_falls_with_eps(whitebox_run):
    m = pd.read_parquet(whitebox_run / "metrics.parquet")
    t = pd.read_parquet(whitebox_run / "trials.parquet")
    assert (t["status"] == "ok").all()
    for tid, rows in m[m["suite"] == "pgd"].groupby("trial_id"):
        acc = rows.sort_values("level")["accuracy"].to_numpy()
        assert list(rows.sort_values("level")["condition"]) == ["eps=0.05", "eps=0.1", "eps=0.2"]
        assert (rows["n"] == 200).all() and np.all(np.diff(acc) <= 0)
        assert acc[0] <= t.set_index("trial_id").loc[tid, "acc_mnist-test"] + 1e-9
    suites = json.loads((whitebox_run / "suites.json").read_text())
    assert "white-box PGD-5" in suites["pgd"]["description"] and [c["level"] for c in suites["pgd"]["conditions"]] == [
        0.05,
        0.1,
        0.2,
    ]


def test_kept_models_reload_to_the_evaluated_accuracy(whitebox_run):
    t = pd.read_parquet(whitebox_run / "trials.parquet").set_index("trial_id")
    test = data.load("mnist-5k").test
    for tid, row in t.iterrows():
        assert row["model_uri"] == str(whitebox_run / "models" / f"{tid}.safetensors")
        model, sidecar = load_model(str(whitebox_run / "models"), tid)
        assert sidecar["meta"]["levels"] == {"label_error": 0.2} or tid == "t0000"
        meta = sidecar["meta"]  # what made the model: its key, the spec's digest, the settings
        assert meta["trial_key"] == row["trial_key"] and len(meta["spec_sha256"]) == 64
        assert meta["training"]["max_epochs"] == 2 and meta["dataset"]["name"] == "mnist-5k"
        right = correct_counts(model, test.images, test.labels, torch.device("cpu"))
        assert int(right.sum()) / right.numel() == pytest.approx(row["acc_mnist-test"], abs=1e-12)  # the exact ratio


def test_bad_whitebox_options_name_the_key(tmp_path, capsys):
    import yaml

    for opts, where, msg in [({"eps": [0.1, 2.0]}, "suites.pgd.eps[1]", "outside (0, 1]"),
                             ({"norm": "l3"}, "suites.pgd.norm", "'linf' or 'l2'"),
                             ({"levels": [1.0]}, "suites.pgd.levels", "give eps, not levels")]:  # fmt: skip
        spec = {**SPEC, "suites": {"pgd": opts}}
        f = tmp_path / "spec.yaml"
        f.write_text(yaml.safe_dump(spec))
        assert main(["validate", str(f)]) == 2
        err = capsys.readouterr().err
        assert f"{f}: {where}: " in err and msg in err, err


def test_validate_warns_where_an_attack_may_cost_a_trial_more_than_its_training(tmp_path, capsys):
    """AutoAttack standard on 500 images at 2 eps bounds at 4,667 passes an image and eps
    (APGD-CE 100 + APGD-DLR 100 + DeepFool 1,000 + Square 5,000/3, then APGD-CE/DLR against
    9 targets): 233x five epochs on mnist-5k's 4,000 images. PGD-10 on 200 images is not."""
    import yaml

    suites = {"aa": {"type": "autoattack", "eps": [0.1, 0.3], "n": 500}, "pgd": {"eps": [0.1], "n": 200}}
    f = tmp_path / "spec.yaml"
    f.write_text(yaml.safe_dump({**SPEC, "training": {"max_epochs": 5}, "suites": suites}))
    assert main(["validate", str(f)]) == 0
    out = capsys.readouterr().out
    assert ("warning: suites.aa may take up to 4,666,667 model passes a trial (500 images x 2 eps x 4,667), "
            "233.3x its training (4,000 images x 5 epochs)") in out and "version: cheap" in out  # fmt: skip
    assert "suites.pgd may" not in out


def test_validate_of_a_search_warns_of_a_costly_attack_too(tmp_path, capsys):
    import yaml

    spec = {**{k: v for k, v in SPEC.items() if k != "design"}, "training": {"max_epochs": 5},
            "search": {"space": {"label_error": {"low": 0.0, "high": 0.4}}, "objectives": [{"metric": "acc_aa"}],
                       "trials": 4},
            "suites": {"aa": {"type": "autoattack", "eps": [0.1, 0.3], "n": 500}}}  # fmt: skip
    f = tmp_path / "search.yaml"
    f.write_text(yaml.safe_dump(spec))
    assert main(["validate", str(f)]) == 0
    out = capsys.readouterr().out
    assert "valid search" in out and "warning: suites.aa may take up to 4,666,667 model passes a trial" in out


def test_the_pass_bounds_are_the_attacks_settings():
    """whitebox's bounds read the settings attacks._art_attacks gives ART: a change there
    that is not made here fails this."""
    from art.attacks import evasion
    from art.estimators.classification import PyTorchClassifier

    from robust_ray.attacks import _art_attacks
    from robust_ray.whitebox import DEEPFOOL_PASSES, SQUARE_PASSES, parse_options

    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))
    clf = PyTorchClassifier(net, loss=torch.nn.CrossEntropyLoss(), input_shape=(1, 28, 28), nb_classes=10,
                            clip_values=(0.0, 1.0))  # fmt: skip
    ce, dlr, deepfool, square = _art_attacks(evasion, clf, ["apgd-ce", "apgd-dlr", "deepfool", "square"], 0.1,
                                             np.inf, 100, 64)  # fmt: skip
    assert ce.max_iter == dlr.max_iter == 100
    assert deepfool.max_iter * deepfool.nb_grads == DEEPFOOL_PASSES and square.max_iter / 3 == SQUARE_PASSES
    assert parse_options("autoattack", {"version": "cheap"}).max_passes(10) == 40
    assert parse_options("autoattack", {"attacks": ["square"]}).max_passes(10) == SQUARE_PASSES
    assert parse_options("pgd", {"steps": 20, "restarts": 3}).max_passes(10) == 60


def test_evaluate_adds_suites_to_kept_models_once(whitebox_run, tmp_path, capsys):
    import shutil

    folder = tmp_path / "copy"
    shutil.copytree(whitebox_run, folder)
    before = pd.read_parquet(folder / "metrics.parquet")
    arg = "l2:type=pgd,norm=l2,eps=[0.5,1.0],n=100,steps=5"
    assert main(["evaluate", str(folder), "--suite", arg]) == 0
    said = capsys.readouterr().out
    pids = {int(p) for p in re.findall(r"Ray worker pid (\d+)", said)}
    assert pids and os.getpid() not in pids, said  # one Ray task per model, not this process
    m = pd.read_parquet(folder / "metrics.parquet")
    added = m[m["suite"] == "l2"]
    assert len(added) == 2 * 2 and len(m) == len(before) + 4 and (added["n"] == 100).all()
    t = pd.read_parquet(folder / "trials.parquet")
    assert t["acc_l2"].notna().all()
    assert "l2" in json.loads((folder / "suites.json").read_text())
    assert main(["evaluate", str(folder), "--suite", arg]) == 0  # idempotent: nothing redone
    assert len(pd.read_parquet(folder / "metrics.parquet")) == len(m)
    assert "Ray worker pid" not in capsys.readouterr().out  # no model evaluated again
    assert main(["evaluate", str(folder), "--suite", "pgd:eps=[5]"]) == 2
    assert "--suite: suites.pgd.eps[0]: 5 is outside (0, 1]" in capsys.readouterr().err
    # a name keeps what it meant: other options under a stored name (the sweep's or an added one) are refused
    for changed in ["l2:type=pgd,norm=l2,eps=[0.5],n=100,steps=5", "pgd:norm=linf,eps=[0.1]"]:
        assert main(["evaluate", str(folder), "--suite", changed]) == 2
        err = capsys.readouterr().err
        assert f"--suite: suites.{changed.split(':')[0]}: differs from the suite" in err and "new name" in err, err
    assert len(pd.read_parquet(folder / "metrics.parquet")) == len(m)


def test_analyze_reads_the_suites_evaluate_added(whitebox_run, tmp_path, capsys):
    import shutil

    from robust_ray.analysis.load import load_results

    folder = tmp_path / "copy"
    shutil.copytree(whitebox_run, folder)
    ran = (folder / "sweep.json").read_bytes()
    assert main(["evaluate", str(folder), "--suite", "l2:type=pgd,norm=l2,eps=[1.0],n=50,steps=3"]) == 0
    assert (folder / "sweep.json").read_bytes() == ran  # what resume compares against is what was trained
    res = load_results(str(folder))
    (d,) = res.designs.values()
    assert d.suites == ["mnist-test", "pgd", "l2"] and res.ok["acc_l2"].notna().all()
    assert d.suite_specs["l2"]["n"] == 50
    assert main(["analyze", str(folder), "--no-plots"]) == 0
    report = (folder / "analysis" / "report.md").read_text()
    assert "## Suites" in report and "white-box PGD-3" in report and "added by robust-ray evaluate" in report
    suites = pd.read_csv(folder / "analysis" / "tables" / "suites.csv").set_index("suite")
    assert suites.loc["l2", "metric rows"] == 2 and suites.loc["pgd", "conditions"] == 3
    assert "the whole test split" in suites.loc["mnist-test", "what it is"]


def test_an_interrupted_evaluate_keeps_the_models_it_finished(whitebox_run, tmp_path, capsys):
    import shutil

    from robust_ray.reevaluate import evaluate_folder

    folder = tmp_path / "copy"
    shutil.copytree(whitebox_run, folder)
    arg = "l2:type=pgd,norm=l2,eps=[1.0],n=50,steps=3"

    def stop_after_one(line):
        if line.startswith("evaluate: 1/"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        evaluate_folder(str(folder), [arg], log=stop_after_one)
    m = pd.read_parquet(folder / "metrics.parquet")
    assert m.loc[m["suite"] == "l2", "trial_id"].nunique() == 1  # the finished model's rows were committed
    assert "l2" in json.loads((folder / "suites.json").read_text())
    said = []
    assert evaluate_folder(str(folder), [arg], log=said.append) == 1  # only the other model is left
    assert sum("new rows" in s for s in said) == 1


@pytest.mark.parametrize("damage", ['{"pgd": ', '{"pgd": {"type": "pgd"}}'], ids=["truncated", "no-conditions"])
def test_a_damaged_suites_json_is_named_by_evaluate_and_analyze(whitebox_run, tmp_path, capsys, damage):
    """One checked reader for every route to suites.json: evaluate (through Storage) and
    analyze (a local folder) both answer exit 2 naming the file; nothing is written."""
    import shutil

    folder = tmp_path / "copy"
    shutil.copytree(whitebox_run, folder)
    (folder / "suites.json").write_text(damage)
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    why = "not readable JSON" if damage.endswith(" ") else "not a suites file"
    assert main(["evaluate", str(folder), "--suite", "l2:type=pgd,norm=l2,eps=[1.0],n=50,steps=3"]) == 2
    err = capsys.readouterr().err
    assert f"{folder / 'suites.json'}: {why}" in err and "Traceback" not in err, err
    assert main(["analyze", str(folder), "--no-plots"]) == 2
    err = capsys.readouterr().err
    assert f"{folder / 'suites.json'}: {why}" in err and "Traceback" not in err, err
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()} == before
    assert not (folder / "analysis").exists()


def test_evaluate_reads_the_models_of_the_folder_it_is_given(whitebox_run, tmp_path, capsys):
    """A copied (or moved) results folder is evaluated on its own models/, not on the files
    model_uri names (the original's): a weights file missing from the copy is said, exit 2,
    and the model that was there keeps its rows."""
    import shutil

    folder = tmp_path / "copy"
    shutil.copytree(whitebox_run, folder)
    tids = sorted(pd.read_parquet(folder / "trials.parquet")["trial_id"])
    (folder / "models" / f"{tids[-1]}.safetensors").unlink()
    assert main(["evaluate", str(folder), "--suite", "l2:type=pgd,norm=l2,eps=[1.0],n=50,steps=3"]) == 2
    err = capsys.readouterr().err
    assert str(folder / "models" / f"{tids[-1]}.safetensors") in err and "Traceback" not in err, err
    m = pd.read_parquet(folder / "metrics.parquet")
    assert set(m.loc[m["suite"] == "l2", "trial_id"]) <= set(tids[:-1])
