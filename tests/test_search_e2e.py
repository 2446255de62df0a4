"""A small real search through Ray Tune on mnist-5k: Optuna's points trained by run's trial,
the Parquet contract out, the Pareto front, the study on disk, warm start from the output."""

import json
import textwrap
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pyarrow.parquet as pq
import pytest

from robust_ray.analysis.load import load_results
from robust_ray.config import parse_spec
from robust_ray.results import SCHEMA_KEY
from robust_ray.runtime import Execution
from robust_ray.search.run import run_search
from robust_ray.search.study import open_storage

SPEC = {
    "name": "tiny-search",
    "dataset": {"name": "mnist-5k"},
    "architectures": ["lenet5"],
    "training": {"max_epochs": 1, "patience": 1, "batch_size": 128},
    "search": {
        "space": {"fgsm_l2": {"low": 0.0, "high": 4.0, "step": 2.0, "per_class": 20}},
        "objectives": [{"metric": "acc_mnist-a"}, {"metric": "acc_mnist-test"}],
        "constraints": [{"metric": "acc_mnist-test", "min": 0.3}],
        "trials": 3,
        "concurrency": 2,
    },
    "suites": {"mnist-test": {"n": 200}, "mnist-a": {"levels": [1.0, 2.0], "n": 200}},
}


@pytest.fixture(scope="module")
def searched(ray_session, tmp_path_factory):
    out = tmp_path_factory.mktemp("search") / "out"
    run_search(parse_spec(SPEC), Execution(output=str(out), log=lambda *_: None))
    return out


def test_trials_follow_the_run_contract_with_optuna_columns(searched):
    t = pd.read_parquet(searched / "trials.parquet")
    assert pq.read_schema(searched / "trials.parquet").metadata[SCHEMA_KEY] == b"1"
    assert list(t.columns[:6]) == ["trial_id", "sweep", "arch", "recipe", "seed", "status"]
    assert (t["status"] == "ok").all() and t["optuna_number"].tolist() == [0, 1, 2]
    assert t["trial_id"].tolist() == ["t0000", "t0001", "t0002"]
    assert sorted(t["fgsm_l2"]) == [0.0, 2.0, 4.0]  # three trials, three distinct levels of the space
    assert t["n_train"].tolist() == [4000 + 200 * (x > 0) for x in t["fgsm_l2"]]
    assert t["feasible"].tolist() == (t["acc_mnist-test"] >= 0.3).tolist()
    m = pd.read_parquet(searched / "metrics.parquet")
    for (tid, suite), g in m.groupby(["trial_id", "suite"]):
        assert t.set_index("trial_id").loc[tid, f"acc_{suite}"] == pytest.approx((g.accuracy * g.n).sum() / g.n.sum())


def test_the_study_on_disk_holds_the_trials(searched):
    study = optuna.load_study(study_name="tiny-search", storage=open_storage(str(searched / "study.journal")))
    t = pd.read_parquet(searched / "trials.parquet").set_index("optuna_number")
    assert [s.state.name for s in study.trials] == ["COMPLETE"] * 3
    for s in study.trials:
        assert s.params["fgsm_l2"] == t.loc[s.number, "fgsm_l2"]
        assert s.values == pytest.approx([t.loc[s.number, "acc_mnist-a"], t.loc[s.number, "acc_mnist-test"]])


def test_pareto_csv_is_the_non_dominated_feasible_set_of_the_trials(searched):
    t = pd.read_parquet(searched / "trials.parquet")
    v = t[["acc_mnist-a", "acc_mnist-test"]].to_numpy()
    ok = t["feasible"].to_numpy()
    front = {
        n for i, n in enumerate(t["optuna_number"])
        if ok[i] and not any(ok[j] and (v[j] >= v[i]).all() and (v[j] > v[i]).any() for j in range(len(t)))
    }  # fmt: skip
    assert set(pd.read_csv(searched / "pareto.csv")["optuna_number"]) == front
    assert (searched / "pareto.png").stat().st_size > 10_000


def test_analyze_reads_a_search_as_a_sweep(searched):
    spec = json.loads((searched / "sweep.json").read_text())
    assert spec["design"]["type"] == "list" and sorted(spec["design"]["factors"]["fgsm_l2"]["levels"]) == [
        0.0,
        2.0,
        4.0,
    ]
    parse_spec(spec)  # sweep.json is a valid spec: its design lists the points tried
    res = load_results(str(searched))
    assert res.ok["fgsm_l2"].nunique() == 3 and set(res.metrics["suite"]) == {"mnist-test", "mnist-a"}


@pytest.mark.slow
def test_warm_start_from_a_search_output_spends_the_budget_on_new_levels(searched, tmp_path):
    spec = json.loads(json.dumps(SPEC))
    spec["name"] = "warm-search"
    spec["search"].update(
        space={"fgsm_l2": {"low": 0.0, "high": 6.0, "step": 2.0, "per_class": 20}},
        objectives=[{"metric": "acc_mnist-a"}],
        trials=1,
        warm_start=[str(searched)],
    )
    out = tmp_path / "out"
    run_search(parse_spec(spec), Execution(output=str(out), log=lambda *_: None))
    study = pd.read_csv(out / "study.csv")
    assert study["source"].tolist() == [str(searched)] * 3 + ["search"]
    t = pd.read_parquet(out / "trials.parquet")
    assert t["optuna_number"].tolist() == [3] and t["fgsm_l2"].tolist() == [6.0]  # the one level not tried
    best = json.loads((out / "best.json").read_text())
    feasible = study[study["feasible"]]
    assert best["acc_mnist-a"] == pytest.approx(feasible["acc_mnist-a"].max())
    assert np.isclose(t["acc_mnist-a"].iloc[0], study["acc_mnist-a"].iloc[-1])


ASHA = {
    **{k: v for k, v in SPEC.items() if k != "search"},
    "name": "asha-search",
    "training": {"max_epochs": 3, "patience": 3, "batch_size": 128},
    "search": {
        # two of the three learning rates cannot learn anything in an epoch: hopeless trials
        "space": {"training.lr": {"choices": [1e-2, 1e-8, 1e-9]}},
        "objectives": [{"metric": "acc_mnist-test"}],
        "trials": 3,
        "concurrency": 1,
        "sampler": "random",
        "seed": 1,
        "early_stopping": {"grace_epochs": 1, "reduction_factor": 2},
    },
}


@pytest.mark.slow
def test_asha_stops_hopeless_trials_which_the_study_records_as_pruned(ray_session, tmp_path):
    out = tmp_path / "out"
    run_search(parse_spec(ASHA), Execution(output=str(out), log=lambda *_: None))
    t = pd.read_parquet(out / "trials.parquet").set_index("optuna_number")
    study = pd.read_csv(out / "study.csv").set_index("optuna_number")
    assert sorted(t["training.lr"]) == [1e-9, 1e-8, 1e-2]
    stopped = t["status"] == "stopped"
    assert stopped.any() and not stopped[t["training.lr"] == 1e-2].any()
    assert (study.loc[stopped.index, "state"] == np.where(stopped, "PRUNED", "COMPLETE")).all()
    assert t.loc[stopped, "acc_mnist-test"].isna().all() and (t.loc[stopped, "epochs"] < 3).all()
    assert t.loc[~stopped, "acc_mnist-test"].notna().all() and (t.loc[~stopped, "epochs"] == 3).all()


def test_the_readme_snippet_opens_the_study(searched, capsys):
    """The README's code block, run as written with NAME and OUT filled in."""
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    start = readme.index("# open a search's study")
    block = textwrap.dedent(
        readme[readme.rindex("```python", 0, start) + len("```python") : readme.index("```", start)]
    )
    exec(block.replace('"NAME"', '"tiny-search"').replace("OUT/study.journal", str(searched / "study.journal")), {})
    lines = capsys.readouterr().out.splitlines()
    t = pd.read_parquet(searched / "trials.parquet")
    assert [ln.split()[0] for ln in lines] == t["trial_id"].tolist()
    assert all(ln.endswith(str(bool(f))) for ln, f in zip(lines, t["feasible"]))
    assert "'acc_mnist-a':" in lines[0]
