"""The study side of a search, without Ray: samplers never repeat a discrete point, the
searcher tells Optuna what each trial reached, the Pareto front is the non-dominated
feasible set, warm start reads a grid's results folder."""

import itertools
import json

import numpy as np
import optuna
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState
from ray.tune.search import Searcher

from robust_ray.analysis.plots import OKABE_ITO
from robust_ray.config import SearchSpec, parse_spec
from robust_ray.errors import SpecError
from robust_ray.plan import make_plan
from robust_ray.results import trial_rows, write_results
from robust_ray.search.distinct import NEVER_RAN, DistinctSampler, grid_values, nearest_untried, point_key
from robust_ray.search.front import metric_label, pareto_figure, pareto_table, study_table
from robust_ray.search.searcher import StudySearch
from robust_ray.search.space import distributions
from robust_ray.search.study import NUMBER, create_study, make_sampler, open_storage
from robust_ray.search.warm import warm_start
from robust_ray.storage import Storage

optuna.logging.set_verbosity(optuna.logging.WARNING)
pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")

SPACE = {
    "a": FloatDistribution(0.0, 2.0, step=0.5),
    "b": IntDistribution(1, 4),
    "c": CategoricalDistribution([0.1, 0.2]),
}


@settings(max_examples=60, deadline=None)
@given(
    tried=st.sets(st.tuples(st.sampled_from(grid_values(SPACE["a"])), st.integers(1, 4), st.sampled_from([0.1, 0.2]))),
    a=st.sampled_from(grid_values(SPACE["a"])),
    b=st.integers(1, 4),
    c=st.sampled_from([0.1, 0.2]),
)
def test_nearest_untried_is_the_closest_point_not_tried(tried, a, b, c):
    keys = {point_key(p) for p in tried}
    got = nearest_untried({"a": a, "b": b, "c": c}, SPACE, keys)
    everything = list(itertools.product(grid_values(SPACE["a"]), range(1, 5), [0.1, 0.2]))
    free = [p for p in everything if point_key(p) not in keys]
    if not free:
        assert got is None
        return

    def dist(p):
        return ((p[0] - a) / 2.0) ** 2 + ((p[1] - b) / 3.0) ** 2 + (p[2] != c)

    assert point_key(got.values()) not in keys
    assert dist(tuple(got.values())) == pytest.approx(min(dist(p) for p in free))


def test_distinct_sampler_never_repeats_a_point_of_a_discrete_space():
    space = {"x": FloatDistribution(0.0, 4.0, step=1.0)}
    stubborn = optuna.samplers.PartialFixedSampler({"x": 2.0}, optuna.samplers.RandomSampler(seed=0))
    study = optuna.create_study(sampler=DistinctSampler(stubborn, space))
    seen = []
    for _ in range(6):
        t = study.ask(space)
        seen.append(t.params["x"])
        study.tell(t, 0.0)
    assert sorted(seen[:5]) == [0.0, 1.0, 2.0, 3.0, 4.0]  # every level once...
    assert [abs(x - 2.0) for x in seen[:5]] == sorted(abs(x - 2.0) for x in seen[:5])  # nearest first
    assert seen[5] == 2.0  # ...then, all tried, the sampler's own proposal
    # running trials count as tried: two asked at once get two levels
    study2 = optuna.create_study(sampler=DistinctSampler(stubborn, space))
    assert study2.ask(space).params["x"] != study2.ask(space).params["x"]


def test_distinct_sampler_counts_stopped_and_failed_points_as_tried():
    """Same levels, same seed: a pruned point stops again, a failed one fails again."""
    space = {"x": FloatDistribution(0.0, 3.0, step=1.0)}
    stubborn = optuna.samplers.PartialFixedSampler({"x": 1.0}, optuna.samplers.RandomSampler(seed=0))
    sampler = DistinctSampler(stubborn, space)
    study = optuna.create_study(sampler=sampler)
    pruned, failed, never = (study.ask(space) for _ in range(3))
    study.tell(pruned, state=TrialState.PRUNED)
    study.tell(failed, state=TrialState.FAIL)
    # a trial failed on --resume because it was asked but never trained leaves its point free
    study.set_user_attr(NEVER_RAN, [never.number])
    study.tell(never, state=TrialState.FAIL)
    assert {pruned.params["x"], failed.params["x"]} == {0.0, 1.0}
    assert never.params["x"] == 2.0
    assert not sampler.exhausted(study)
    again = study.ask(space)
    assert again.params["x"] == 2.0  # the nearest point not tried, the never-run one's
    study.tell(again, 0.0)
    assert not sampler.exhausted(study)
    study.tell(study.ask(space), 0.0)
    assert sampler.exhausted(study)


def test_searcher_stops_once_warm_start_and_trials_fill_the_space(tmp_path):
    """Warm-start trials occupy points: the searcher answers FINISHED, never a repeat."""
    s = spec_of(objectives=[{"metric": "acc_mnist-a"}], constraints=[], trials=4)
    dists = {"fgsm_l2": FloatDistribution(0.0, 6.0, step=2.0)}
    storage = open_storage(str(tmp_path / "study.journal"))
    sampler = make_sampler(s, dists)
    study = create_study(s, "t", storage, sampler)
    for level in (0.0, 4.0):
        study.add_trial(optuna.trial.create_trial(params={"fgsm_l2": level}, distributions=dists, values=[0.5]))
    search = StudySearch(dists, s, sampler, "t", storage)
    got = [search.suggest(tid) for tid in ("A", "B", "C")]
    assert sorted(c["fgsm_l2"] for c in got[:2]) == [2.0, 6.0]
    assert got[2] == Searcher.FINISHED


def test_restore_frees_the_points_of_trials_asked_after_the_last_save(tmp_path):
    s = spec_of(objectives=[{"metric": "acc_mnist-a"}], constraints=[], trials=4)
    dists = {"fgsm_l2": FloatDistribution(0.0, 6.0, step=2.0)}
    storage = open_storage(str(tmp_path / "study.journal"))
    sampler = make_sampler(s, dists)
    create_study(s, "t", storage, sampler)
    search = StudySearch(dists, s, sampler, "t", storage)
    search.suggest("A")
    search.save(str(tmp_path / "searcher.pkl"))
    lost = search.suggest("B")["fgsm_l2"]  # asked, then the driver died before Tune saved
    again = StudySearch(dists, s, make_sampler(s, dists), "t", storage)
    again.restore(str(tmp_path / "searcher.pkl"))
    b = optuna.load_study(study_name="t", storage=storage).trials[1]
    assert (
        b.state == TrialState.FAIL
        and b.number in optuna.load_study(study_name="t", storage=storage).user_attrs[NEVER_RAN]
    )
    assert lost in {again.suggest(tid)["fgsm_l2"] for tid in ("C", "D", "E")}  # it never trained: still a point to try


def test_distinct_sampler_leaves_continuous_spaces_to_the_sampler():
    space = {"x": FloatDistribution(0.0, 4.0)}
    stubborn = optuna.samplers.PartialFixedSampler({"x": 2.0}, optuna.samplers.RandomSampler(seed=0))
    study = optuna.create_study(sampler=DistinctSampler(stubborn, space))
    study.optimize(lambda t: t.suggest_float("x", 0.0, 4.0), n_trials=3)
    assert [t.params["x"] for t in study.trials] == [2.0, 2.0, 2.0]


def spec_of(**search) -> SearchSpec:
    base = {
        "space": {"fgsm_l2": {"low": 0.0, "high": 6.0, "step": 2.0}},
        "objectives": [{"metric": "acc_mnist-a"}, {"metric": "acc_mnist-test"}],
        "constraints": [{"metric": "acc_mnist-test", "min": 0.9}],
        "trials": 4,
    }
    return SearchSpec.model_validate({**base, **search})


def test_searcher_tells_optuna_final_results_with_constraints_and_prunes_stopped_trials(tmp_path):
    s = spec_of()
    dists = {"fgsm_l2": FloatDistribution(0.0, 6.0, step=2.0)}
    storage = open_storage(str(tmp_path / "study.journal"))
    sampler = make_sampler(s, dists)
    create_study(s, "t", storage, sampler)
    search = StudySearch(dists, s, sampler, "t", storage, record=str(tmp_path / "out"))
    configs = {tid: search.suggest(tid) for tid in ("A", "B", "C", "D")}
    assert [c[NUMBER] for c in configs.values()] == [0, 1, 2, 3]
    assert len({c["fgsm_l2"] for c in configs.values()}) == 4  # four trials, four levels
    epoch = {"epoch": 1, "val_acc": 0.5, "train_loss": 1.0, "training_iteration": 1}
    search.on_trial_result("A", epoch)  # per-epoch results carry no objective: ignored
    search.on_trial_complete("A", {**epoch, "acc_mnist-a": 0.7, "acc_mnist-test": 0.95})
    search.on_trial_complete("B", {**epoch, "acc_mnist-a": 0.8, "acc_mnist-test": 0.85})
    search.on_trial_complete("C", epoch)  # stopped by ASHA before its final report
    search.on_trial_complete("D", None, error=True)
    study = optuna.load_study(study_name="t", storage=open_storage(str(tmp_path / "study.journal")))
    a, b, c, d = study.trials
    # one list per trial (what optuna-dashboard reads), named by the study's constraint_names
    assert (a.state, a.values, a.constraints) == (TrialState.COMPLETE, [0.7, 0.95], {"0": pytest.approx(-0.05)})
    assert (b.state, b.constraints) == (TrialState.COMPLETE, {"0": pytest.approx(0.05)})
    assert study.user_attrs["constraint_names"] == ["acc_mnist-test>=0.9"]
    assert (c.state, d.state) == (TrialState.PRUNED, TrialState.FAIL)
    assert [t.number for t in study.best_trials] == [0]  # B is better on MNIST-A but infeasible
    # what optuna-dashboard shows: the objectives by name, our trial id, accuracies and levels
    assert study.metric_names == ["acc_mnist-a", "acc_mnist-test"]
    assert a.user_attrs == {"trial_id": "t0000", "levels": {"fgsm_l2": configs["A"]["fgsm_l2"]},
                            "acc_mnist-a": 0.7, "acc_mnist-test": 0.95}  # fmt: skip
    # the driver's record of each COMPLETE trial, written before the study was told
    assert sorted(p.name for p in (tmp_path / "out" / "finished").iterdir()) == ["t0000.json", "t0001.json"]
    record = json.loads((tmp_path / "out" / "finished" / "t0000.json").read_text())
    assert record["config"] == {"fgsm_l2": configs["A"]["fgsm_l2"], NUMBER: 0}
    assert record["metrics"]["acc_mnist-a"] == 0.7


@pytest.mark.parametrize("seed", range(4))
def test_pareto_front_is_the_non_dominated_feasible_set(seed):
    s = spec_of(
        objectives=[{"metric": "acc_mnist-a"}, {"metric": "acc_mnist-test"}, {"metric": "val_acc", "mode": "min"}]
    )
    rng = np.random.default_rng(seed)
    dists = {"fgsm_l2": FloatDistribution(0.0, 6.0, step=2.0)}
    study = optuna.create_study(directions=["maximize", "maximize", "minimize"])
    values = np.round(rng.uniform(0.0, 1.0, (40, 3)), 1)  # coarse: ties and duplicates happen
    for v in values:
        study.add_trial(
            optuna.trial.create_trial(
                params={"fgsm_l2": 2.0}, distributions=dists, values=list(v), constraints={"c": 0.9 - v[1]}
            )
        )
    front = set(pareto_table(study, s)["optuna_number"])
    signed = values * np.array([1, 1, -1])  # all "higher is better"
    feasible = values[:, 1] >= 0.9
    expected = {
        i
        for i in range(len(values))
        if feasible[i]
        and not any(
            feasible[j] and np.all(signed[j] >= signed[i]) and np.any(signed[j] > signed[i]) for j in range(len(values))
        )
    }
    assert front == expected


def test_pareto_plot_names_its_axes_and_draws_the_front_in_the_colour_blind_safe_palette():
    s = spec_of(space={"fgsm_l2": {"low": 0.0, "high": 6.0, "step": 2.0, "per_class": 200}, "training.lr": {"low": 1e-4, "high": 1e-2, "log": True}},
                objectives=[{"metric": "acc_mnist-a"}, {"metric": "val_acc", "mode": "min"}])  # fmt: skip
    dists = {"fgsm_l2": FloatDistribution(0.0, 6.0, step=2.0), "training.lr": FloatDistribution(1e-4, 1e-2, log=True)}
    study = optuna.create_study(directions=["maximize", "minimize"])
    for level, a, v in [(0.0, 0.2, 0.9), (2.0, 0.6, 0.95), (4.0, 0.5, 0.99)]:
        study.add_trial(optuna.trial.create_trial(params={"fgsm_l2": level, "training.lr": 1e-3}, distributions=dists,
                                                  values=[a, v], constraints={"c": -1.0}))  # fmt: skip
    fig = pareto_figure(study_table(study, s), pareto_table(study, s), s)
    (ax,) = fig.axes
    assert ax.get_xlabel() == "accuracy on mnist-a (higher is better)"
    assert ax.get_ylabel() == "validation accuracy (lower is better)"
    (front,) = [line for line in ax.get_lines() if line.get_label() == "Pareto front"]
    assert front.get_color() in OKABE_ITO
    caption = " ".join(t.get_text() for t in fig.texts).replace("\n", " ")
    assert "fgsm_l2: FGSM perturbation in training images" in caption and "training.lr: training setting lr" in caption
    assert metric_label("train_loss", "min") == "training loss (lower is better)"


GRID = {
    "name": "grid",
    "dataset": {"name": "mnist-5k"},
    "architectures": ["lenet5"],
    "design": {
        "type": "one_factor",
        "factors": {"fgsm_l2": {"levels": [2.0, 4.0, 5.0]}, "label_error": {"levels": [0.2]}},
    },
    "suites": {"mnist-test": {"n": 200}, "mnist-a": {"levels": [1.0, 2.0], "n": 200}},
}


def grid_folder(tmp_path, spec: dict, accs: dict, arch="lenet5", seed=0, recipe="standard") -> str:
    """A results folder as ``run`` writes it for ``spec``, with these accuracies per level row."""
    plans, outcomes = [], {}
    for i, ((fgsm, le), (a, t)) in enumerate(accs.items()):
        tid = f"t{i:04d}"
        levels = {"fgsm_l2": fgsm, "label_error": le}
        plans.append({"trial_id": tid, "arch": arch, "seed": seed, "recipe": recipe, "levels": levels})
        outcomes[tid] = {"status": "ok", "acc_mnist-a": a, "acc_mnist-test": t, "train_acc": 1.0, "val_acc": 0.9}
    trials, metrics = trial_rows("grid", plans, outcomes)
    out = Storage(str(tmp_path / "grid"))
    write_results(out, trials, metrics)
    out.write_bytes("sweep.json", json.dumps(parse_spec(spec).model_dump(mode="json")).encode())
    return out.uri


def search_spec(warm: str, **changes) -> dict:
    return {
        **{k: v for k, v in GRID.items() if k != "design"},
        "name": "warm",
        "search": {
            "space": {"fgsm_l2": {"low": 0.0, "high": 6.0, "step": 2.0}},
            "objectives": [{"metric": "acc_mnist-a"}],
            "constraints": [{"metric": "acc_mnist-test", "min": 0.9}],
            "trials": 2,
            "warm_start": [warm],
        },
        **changes,
    }


def test_warm_start_feeds_a_grid_s_points_of_the_space_to_the_study(tmp_path):
    accs = {(0.0, 0.0): (0.3, 0.99), (2.0, 0.0): (0.6, 0.98), (4.0, 0.0): (0.8, 0.85), (5.0, 0.0): (0.7, 0.97),
            (0.0, 0.2): (0.2, 0.95)}  # fmt: skip
    folder = grid_folder(tmp_path, GRID, accs)
    spec = parse_spec(search_spec(folder))
    warm = warm_start(spec, distributions(spec))
    got = {t.params["fgsm_l2"]: (t.values, t.constraints) for t in warm.trials}
    # 5.0 is off the space's step, and the label_error row trains on another set: left out
    assert warm.skipped == {folder: {"outside the search space": 1, "another factor varied": 1}}
    assert got == {
        0.0: ([0.3], {"0": pytest.approx(-0.09)}),
        2.0: ([0.6], {"0": pytest.approx(-0.08)}),
        4.0: ([0.8], {"0": pytest.approx(0.05)}),
    }
    assert all(t.user_attrs["warm_start"] == folder for t in warm.trials)
    study = optuna.create_study(direction="maximize")
    for t in warm.trials:
        study.add_trial(t)
    assert study.best_trial.params == {"fgsm_l2": 2.0}  # 4.0 scores higher but breaks the constraint


def test_warm_start_refuses_folders_whose_accuracies_mean_something_else(tmp_path):
    other = {**GRID, "suites": {"mnist-test": {"n": 200}, "mnist-a": {"levels": [1.0, 3.0], "n": 200}}}
    folder = grid_folder(tmp_path, other, {(0.0, 0.0): (0.3, 0.99)})
    spec = parse_spec(search_spec(folder))
    with pytest.raises(SpecError) as e:
        warm_start(spec, distributions(spec), "s.yaml")
    assert e.value.path == "search.warm_start[0]" and "suite 'mnist-a'" in str(e.value)
    pd.read_parquet(f"{folder}/trials.parquet")  # the folder itself is a fine results folder


LEVELS = {(0.0, 0.0): (0.3, 0.99), (2.0, 0.0): (0.6, 0.98), (4.0, 0.0): (0.8, 0.85)}


@pytest.mark.parametrize(
    "grid_change, why",
    [
        ({"training": {"max_epochs": 5}}, "other training.max_epochs"),
        ({"training": {"lr": 0.01}}, "other training.lr"),
        ({"training": {"recipe": "pgd_at"}}, "other recipe"),
        ({"seeds": [1]}, "other seed"),
        ({"architectures": ["alexnet8"]}, "other architecture"),
    ],
)
def test_warm_start_leaves_out_trials_trained_otherwise(tmp_path, grid_change, why):
    """Same levels, but another fit: another model, not a point of this search."""
    grid = {**GRID, **grid_change}
    folder = grid_folder(tmp_path, grid, LEVELS, arch=grid["architectures"][0], seed=grid.get("seeds", [0])[0],
                         recipe=grid.get("training", {}).get("recipe", "standard"))  # fmt: skip
    spec = parse_spec(search_spec(folder))
    warm = warm_start(spec, distributions(spec))
    assert warm.trials == [] and warm.skipped == {folder: {why: 3}}
    assert warm.summary() == f"3 {why}"


def test_warm_start_compares_recipe_options_and_the_searched_factor_s_options(tmp_path):
    pgd = {**GRID, "training": {"recipe": "pgd_at", "recipe_options": {"eps": 0.2}}}
    folder = grid_folder(tmp_path, pgd, LEVELS, recipe="pgd_at")
    spec = parse_spec(search_spec(folder, training={"recipe": "pgd_at", "recipe_options": {"eps": 0.3}}))
    assert warm_start(spec, distributions(spec)).skipped == {folder: {"other recipe options": 3}}
    # per_class 100 there, the default 2000 here: FGSM's trials trained on other sets; the
    # level-0 trial has no FGSM pool, so its options changed nothing and it is kept
    grid = {**GRID, "design": {"type": "one_factor", "factors": {"fgsm_l2": {"levels": [2.0, 4.0], "per_class": 100}}}}
    folder = grid_folder(tmp_path / "b", grid, LEVELS)
    spec = parse_spec(search_spec(folder))
    warm = warm_start(spec, distributions(spec))
    assert warm.skipped == {folder: {"other fgsm_l2 options": 2}}
    assert [t.params for t in warm.trials] == [{"fgsm_l2": 0.0}]
    # the same options written out (per_class at its default) are the same options
    grid["design"]["factors"]["fgsm_l2"]["per_class"] = 2000
    folder = grid_folder(tmp_path / "c", grid, LEVELS)
    spec = parse_spec(search_spec(folder))
    assert len(warm_start(spec, distributions(spec)).trials) == 3


def test_warm_start_ignores_the_setting_it_searches_and_reads_an_earlier_search_s_columns(tmp_path):
    grid = {**GRID, "training": {"max_epochs": 5}}
    folder = grid_folder(tmp_path, grid, LEVELS)
    d = search_spec(folder)
    d["search"]["space"]["training.max_epochs"] = {"choices": [5, 10]}
    spec = parse_spec(d)  # training.max_epochs is 30 here, but searched: the folder's 5 is a point
    warm = warm_start(spec, distributions(spec))
    assert sorted(t.params["training.max_epochs"] for t in warm.trials) == [5, 5, 5]
    # an earlier search's trials hold their own lr in a training.lr column
    trials = pd.read_parquet(f"{folder}/trials.parquet")
    trials["training.lr"] = [1e-3, 0.01, 1e-3]
    trials.to_parquet(f"{folder}/trials.parquet")
    warm = warm_start(spec, distributions(spec))
    assert warm.skipped == {folder: {"other training.lr": 1}} and len(warm.trials) == 2


def test_warm_start_reads_a_searched_recipe_option_as_a_coordinate_not_a_difference(tmp_path):
    pgd = {**GRID, "training": {"recipe": "pgd_at", "recipe_options": {"eps": 0.2}}}
    folder = grid_folder(tmp_path, pgd, LEVELS, recipe="pgd_at")
    d = search_spec(folder, training={"recipe": "pgd_at", "recipe_options": {"eps": 0.3}})
    d["search"]["space"]["training.recipe_options.eps"] = {"low": 0.1, "high": 0.3}
    spec = parse_spec(d)  # eps 0.3 here, but searched: the folder's 0.2 is a point
    warm = warm_start(spec, distributions(spec))
    assert sorted((t.params["fgsm_l2"], t.params["training.recipe_options.eps"]) for t in warm.trials) == [
        (0.0, 0.2), (2.0, 0.2), (4.0, 0.2)]  # fmt: skip
    # an earlier search's trials hold their own eps in a column; 0.5 is outside this space
    trials = pd.read_parquet(f"{folder}/trials.parquet")
    trials["training.recipe_options.eps"] = [0.15, 0.5, 0.25]
    trials.to_parquet(f"{folder}/trials.parquet")
    warm = warm_start(spec, distributions(spec))
    assert sorted(t.params["training.recipe_options.eps"] for t in warm.trials) == [0.15, 0.25]
    assert warm.skipped == {folder: {"outside the search space": 1}}
    # a search that fixes eps at 0.25 keeps only the trial trained at 0.25
    spec = parse_spec(search_spec(folder, training={"recipe": "pgd_at", "recipe_options": {"eps": 0.25}}))
    warm = warm_start(spec, distributions(spec))
    assert [t.user_attrs["trial_id"] for t in warm.trials] == ["t0002"]
    assert warm.skipped == {folder: {"other recipe options": 2}}
    # an option searched here does not excuse another that differs (steps 7 there by default)
    d["training"]["recipe_options"] = {"steps": 2}
    spec = parse_spec(d)
    assert warm_start(spec, distributions(spec)).skipped == {folder: {"other recipe options": 3}}


def keyed_grid_folder(tmp_path, spec: dict, name: str = "keyed") -> str:
    """A results folder of ``spec`` as ``run`` writes it, trial keys included (issue 17)."""
    plans = [t.to_dict() for t in make_plan(parse_spec(spec)).trials]
    outcomes = {p["trial_id"]: {"status": "ok", "acc_mnist-a": 0.1 + p["levels"]["fgsm_l2"] / 10, "acc_mnist-test": 0.95}
                for p in plans}  # fmt: skip
    out = Storage(str(tmp_path / name))
    write_results(out, *trial_rows("grid", plans, outcomes))
    out.write_bytes("sweep.json", json.dumps(parse_spec(spec).model_dump(mode="json")).encode())
    return out.uri


def test_warm_start_matches_a_grid_s_trials_by_their_trial_key(tmp_path):
    folder = keyed_grid_folder(tmp_path, GRID)
    spec = parse_spec(search_spec(folder))
    warm = warm_start(spec, distributions(spec))
    # the clean trial (fgsm 0), 2.0 and 4.0 are points of the search; 5.0 is off its step; the
    # label_error trial is another model (its key says so: another factor applied)
    assert sorted(t.params["fgsm_l2"] for t in warm.trials) == [0.0, 2.0, 4.0]
    assert warm.skipped == {folder: {"outside the search space": 1, "trained otherwise (another trial_key)": 1}}
    # trained with other settings: every key differs, nothing is reused
    other = keyed_grid_folder(tmp_path, {**GRID, "training": {"max_epochs": 2}}, "other")
    spec = parse_spec(search_spec(other))
    warm = warm_start(spec, distributions(spec))
    assert warm.trials == [] and warm.skipped[other]["trained otherwise (another trial_key)"] == 4


def test_optuna_dashboard_reads_names_and_feasibility_of_a_search_s_study(tmp_path):
    """Through optuna-dashboard 0.21's own serialiser: objective names, not "Objective 0";
    each trial's constraint list (an infeasible point shows as infeasible); user_attrs."""
    serializer = pytest.importorskip("optuna_dashboard._serializer")
    from optuna_dashboard._named_objectives import get_objective_names

    s = spec_of()
    dists = {"fgsm_l2": FloatDistribution(0.0, 6.0, step=2.0)}
    storage = open_storage(str(tmp_path / "study.journal"))
    sampler = make_sampler(s, dists)
    create_study(s, "t", storage, sampler)
    search = StudySearch(dists, s, sampler, "t", storage)
    for tid, test_acc in (("A", 0.95), ("B", 0.85)):
        search.suggest(tid)
        search.on_trial_complete(tid, {"acc_mnist-a": 0.7, "acc_mnist-test": test_acc})
    study = optuna.load_study(study_name="t", storage=open_storage(str(tmp_path / "study.journal")))
    frozen = storage.get_all_studies()[0]
    assert get_objective_names(frozen.system_attrs) == ["acc_mnist-a", "acc_mnist-test"]
    shown = [serializer.serialize_frozen_trial(frozen._study_id, t, frozen.system_attrs) for t in study.trials]
    assert [x["constraints"] for x in shown] == [[pytest.approx(-0.05)], [pytest.approx(0.05)]]
    assert [len(t.constraints) for t in study.trials] == [1, 1]  # Optuna reads the same list, once
    attrs = {a["key"]: a["value"] for a in shown[0]["user_attrs"]}
    assert attrs["trial_id"] == "t0000" and float(attrs["acc_mnist-test"]) == 0.95
