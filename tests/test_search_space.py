"""A proposed point as the trial that trains it, without Ray: searched recipe options reach
the recipe, and a mixture of two perturbations gives every point both factors' levels and
pools, with no 2-D point tried twice."""

import optuna
import pytest
from optuna.distributions import FloatDistribution, IntDistribution

from robust_ray.config import parse_spec
from robust_ray.recipes import RECIPES
from robust_ray.search.distinct import point_key
from robust_ray.search.space import distributions
from robust_ray.search.study import NUMBER, make_sampler
from robust_ray.search.trial import config_trial

optuna.logging.set_verbosity(optuna.logging.WARNING)
pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")


def spec_of(space: dict, trials: int = 8, sampler: str = "gp", **top) -> object:
    return parse_spec(
        {
            "name": "space",
            "architectures": ["lenet5"],
            "search": {"space": space, "objectives": [{"metric": "acc_clean"}], "trials": trials, "sampler": sampler},
            **top,
        }
    )


PGD = {"training": {"recipe": "pgd_at", "recipe_options": {"steps": 3, "norm": "l2"}, "lr": 0.01}}


def test_a_sampled_recipe_option_reaches_the_recipe_over_the_spec_s_own():
    spec = spec_of({"fgsm_l2": {"low": 0.0, "high": 4.0, "step": 1.0},
                    "training.recipe_options.eps": {"low": 0.05, "high": 0.3}}, **PGD)  # fmt: skip
    config = {"fgsm_l2": 2.0, "training.recipe_options.eps": 0.2, NUMBER: 5}
    trial, _, settings = config_trial(config, spec)
    assert trial.trial_id == "t0005" and trial.recipe == "pgd_at"
    # the searched eps beside the spec's fixed steps and norm; execute_trial passes these to the recipe
    assert trial.recipe_options == {"steps": 3, "norm": "l2", "eps": 0.2}
    opts = RECIPES.get("pgd_at").options.model_validate(trial.to_dict()["recipe_options"])
    assert (opts.eps, opts.steps, opts.norm) == (0.2, 3, "l2")
    # an option is not a training setting: the settings are the spec's
    assert settings == spec.training


def test_a_whole_number_option_is_an_integer_dimension_and_reaches_the_recipe_as_int():
    spec = spec_of({"training.recipe_options.steps": {"low": 1, "high": 7},
                    "training.lr": {"low": 1e-4, "high": 1e-1, "log": True}}, **PGD)  # fmt: skip
    assert distributions(spec) == {
        "training.recipe_options.steps": IntDistribution(1, 7),
        "training.lr": FloatDistribution(1e-4, 1e-1, log=True),
    }
    trial, _, settings = config_trial({"training.recipe_options.steps": 6.0, "training.lr": 0.05, NUMBER: 0}, spec)
    assert trial.recipe_options == {"steps": 6, "norm": "l2"} and type(trial.recipe_options["steps"]) is int
    assert settings.lr == 0.05 and settings.recipe_options == {"steps": 3, "norm": "l2"}


MIX = {
    "gaussian_l2": {"low": 0.0, "high": 2.0, "step": 0.5},
    "fgsm_l2": {"low": 0.0, "high": 4.0, "step": 1.0, "per_class": 20},
}


def test_a_mixture_has_a_distribution_per_factor_and_each_point_trains_on_both():
    spec = spec_of(MIX)
    assert distributions(spec) == {"gaussian_l2": FloatDistribution(0.0, 2.0, step=0.5),
                                   "fgsm_l2": FloatDistribution(0.0, 4.0, step=1.0)}  # fmt: skip
    both, _, _ = config_trial({"gaussian_l2": 1.5, "fgsm_l2": 3.0, NUMBER: 1}, spec)
    assert both.levels == {"gaussian_l2": 1.5, "fgsm_l2": 3.0}
    assert set(both.pools) == {"gaussian_l2", "fgsm_l2"}
    # a factor at its identity level keeps its level in the row but adds no pool
    one, plan, _ = config_trial({"gaussian_l2": 0.0, "fgsm_l2": 3.0, NUMBER: 2}, spec)
    assert one.levels == {"gaussian_l2": 0.0, "fgsm_l2": 3.0} and set(one.pools) == {"fgsm_l2"}
    assert one.pools["fgsm_l2"] == both.pools["fgsm_l2"]  # same level, same options: one cached pool
    assert plan.datasets[one.pools["fgsm_l2"]].p["per_class"] == 20


@pytest.mark.parametrize("sampler", ["gp", "tpe", "random"])
def test_a_mixture_s_sampler_never_repeats_a_2d_point_until_the_grid_is_tried(sampler):
    spec = spec_of(MIX, trials=25, sampler=sampler)
    dists = distributions(spec)
    study = optuna.create_study(direction="maximize", sampler=make_sampler(spec.search, dists))
    seen = []
    for _ in range(25):  # every point of the 5 x 5 grid: the last ones are forced moves
        t = study.ask(dists)
        trial, _, _ = config_trial({**t.params, NUMBER: t.number}, spec)
        assert trial.levels == t.params
        seen.append(point_key(t.params[f] for f in dists))
        study.tell(t, 1.0 - abs(t.params["gaussian_l2"] - 1.0) - abs(t.params["fgsm_l2"] - 2.0))
    assert len(set(seen)) == 25
    assert study.sampler.exhausted(study)


def test_trials_parquet_records_a_searched_recipe_option_like_a_training_setting():
    from robust_ray.results import trial_rows
    from robust_ray.search.run import _Orphan, _outcomes

    spec = spec_of({"fgsm_l2": {"low": 0.0, "high": 4.0, "step": 1.0},
                    "training.recipe_options.eps": {"low": 0.05, "high": 0.3}}, **PGD)  # fmt: skip
    done = {"status": "ok", "metrics_json": "[]", "acc_clean": 0.9, "val_acc": 0.9, "train_acc": 1.0}
    grid = [_Orphan({"fgsm_l2": 1.0, "training.recipe_options.eps": 0.1, NUMBER: 0}, done),
            _Orphan({"fgsm_l2": 2.0, "training.recipe_options.eps": 0.25, NUMBER: 1}, done)]  # fmt: skip
    plans, outcomes, params = _outcomes(spec, grid)
    assert params == {"t0000": {NUMBER: 0, "training.recipe_options.eps": 0.1},
                      "t0001": {NUMBER: 1, "training.recipe_options.eps": 0.25}}  # fmt: skip
    trials, _ = trial_rows(spec.name, plans, outcomes)
    assert list(trials["fgsm_l2"]) == [1.0, 2.0]
