"""Bad search sections: exit code 2 and one message naming the file and key, before any
trial runs and before anything is written."""

from pathlib import Path

import pytest
import yaml

from robust_ray.cli import main
from robust_ray.config import load_spec

GOOD = {
    "name": "search-spec",
    "dataset": {"name": "mnist-5k"},
    "architectures": ["lenet5"],
    "training": {"max_epochs": 3},
    "search": {
        "space": {"fgsm_l2": {"low": 0.0, "high": 12.0, "step": 0.5, "per_class": 20}},
        "objectives": [{"metric": "acc_mnist-a"}],
        "constraints": [{"metric": "acc_mnist-test", "min": 0.98}],
        "trials": 8,
    },
    "suites": {"mnist-test": {}, "mnist-a": {"levels": [1.0, 2.0]}},
}


def write(tmp_path: Path, spec: dict) -> Path:
    p = tmp_path / "spec.yaml"
    p.write_text(yaml.safe_dump(spec))
    return p


def with_(path: str, value, spec=GOOD):
    """``spec`` with the key at dotted ``path`` set to ``value`` (None: removed); a deep copy.
    ``training.<setting>`` inside ``search.space`` is one key."""
    spec = yaml.safe_load(yaml.safe_dump(spec))
    node, keys = spec, path.replace("space.training.", "space.training:").split(".")
    keys = [k.replace("training:", "training.") for k in keys]
    for k in keys[:-1]:
        node = node[int(k)] if isinstance(node, list) else node.setdefault(k, {})
    last = int(keys[-1]) if isinstance(node, list) else keys[-1]
    if value is None:
        del node[last]
    else:
        node[last] = value
    return spec


def searching(option: str, r: dict, recipe: str = "pgd_at") -> dict:
    """GOOD with ``recipe`` and its ``option`` searched over ``r``, beside the FGSM level."""
    fixed = {"steps": 3} if recipe == "pgd_at" else {}
    spec = with_("training", {"max_epochs": 3, "recipe": recipe, "recipe_options": fixed})
    spec["search"]["space"][f"training.recipe_options.{option}"] = r
    return spec


SPACE = "search.space"
OPT = f"{SPACE}.training.recipe_options"
BAD = [
    (with_(f"{SPACE}.fgsm_l2.low", 13.0), f"{SPACE}.fgsm_l2.low", "inverted range: low 13 is above high 12"),
    (with_(f"{SPACE}.fgsm_l2", {"low": 4.0, "high": 4.0}), f"{SPACE}.fgsm_l2.low", "empty range"),
    (with_(f"{SPACE}.fgsm_l2", {"choices": []}), f"{SPACE}.fgsm_l2.choices", "empty list of choices"),
    (with_(f"{SPACE}.fgsm_l2", {"choices": [1.0, 2.0, 1.0]}), f"{SPACE}.fgsm_l2.choices[2]", "listed twice"),
    (with_(f"{SPACE}.fgsm_l2", {"low": 1.0}), f"{SPACE}.fgsm_l2.high", "needs low and high"),
    (with_(f"{SPACE}.fgsm_l2.step", 5.0), f"{SPACE}.fgsm_l2.step", "not a multiple of step 5"),
    (with_(f"{SPACE}.fgsm_l2.step", 0.0), f"{SPACE}.fgsm_l2.step", "greater than 0"),
    (with_(f"{SPACE}.fgsm_l2.low", -1.0), f"{SPACE}.fgsm_l2.low", "below 0"),
    (
        with_(f"{SPACE}.fgsm_l2", {"low": 0.0, "high": 4.0, "log": True}),
        f"{SPACE}.fgsm_l2.low",
        "log range needs low > 0",
    ),
    (with_(f"{SPACE}.fgsm_l2.per_clas", 5), f"{SPACE}.fgsm_l2.per_clas", "unknown option 'per_clas' of fgsm_l2"),
    (with_(f"{SPACE}.blur_l2", {"low": 0, "high": 1}), f"{SPACE}.blur_l2", "unknown factor 'blur_l2'"),
    (with_(f"{SPACE}.few_pixel", {"low": 1, "high": 5.5}), f"{SPACE}.few_pixel.high", "whole number"),
    (with_(f"{SPACE}.training.lr", {"low": 0.0, "high": 0.1}), f"{SPACE}.training.lr.low", "greater than 0"),
    (
        with_(f"{SPACE}.training.batch_size", {"low": 16, "high": 64.5}),
        f"{SPACE}.training.batch_size.high",
        "whole numbers",
    ),
    (
        with_(f"{SPACE}.training.optimizer", {"choices": [1.0]}),
        f"{SPACE}.training.optimizer",
        "not a numeric training setting",
    ),
    (with_(f"{SPACE}.training", {"lr": {"low": 0.1, "high": 0.2}}), f"{SPACE}.training", "as training.<setting> keys"),
    (
        searching("epz", {"low": 0.1, "high": 0.3}),
        f"{OPT}.epz",
        (
            "recipe pgd_at has no option 'epz'; searchable: "
            "training.recipe_options.eps, training.recipe_options.step_size, training.recipe_options.steps"
        ),
    ),
    (searching("eps", {"low": 0.1, "high": 0.3}, "standard"), f"{OPT}.eps", "recipe standard has no option 'eps'"),
    (searching("norm", {"choices": [1.0, 2.0]}), f"{OPT}.norm", "option 'norm' of recipe pgd_at is not a number"),
    (searching("random_start", {"choices": [0, 1]}), f"{OPT}.random_start", "is not a number"),
    (
        searching("eps", {"low": 0.0, "high": 0.3}),
        f"{OPT}.eps.low",
        "option eps of recipe pgd_at: Input should be greater than 0",
    ),
    (searching("eps", {"choices": [0.1, -0.1]}), f"{OPT}.eps.choices[1]", "greater than 0"),
    (searching("adv_weight", {"low": 0.5, "high": 1.5}, "m_tlat"), f"{OPT}.adv_weight.high", "less than or equal to 1"),
    (searching("steps", {"low": 1, "high": 5.5}), f"{OPT}.steps.high", "whole numbers"),
    (searching("eps", {"low": 0.3, "high": 0.1}), f"{OPT}.eps.low", "inverted range"),
    (searching("eps", {"low": 0.1, "high": 0.3, "per_class": 5}), f"{OPT}.eps.per_class", "unknown key 'per_class'"),
    (
        with_("search.objectives.0.metric", "acc_mnist-c"),
        "search.objectives[0].metric",
        "no trial reports 'acc_mnist-c'",
    ),
    (with_("search.objectives", []), "search.objectives", "at least 1 item"),
    (with_("search.constraints.0.metric", "acc_clean"), "search.constraints[0].metric", "no trial reports 'acc_clean'"),
    (with_("search.constraints.0", {"metric": "val_acc"}), "search.constraints[0]", "needs min, max or both"),
    (with_("search.trials", 0), "search.trials", "greater than or equal to 1"),
    (with_("search.trials", 26), "search.trials", "the space holds 25 points"),
    (with_("search.concurrency", 0), "search.concurrency", "greater than or equal to 1"),
    (with_("search.storage", "sqlite:///study.db"), "search.storage", "SQLite locks the whole file"),
    (with_("search.sampler", "cmaes"), "search.sampler", "'gp', 'tpe', 'nsga2' or 'random'"),
    (
        with_("search.early_stopping", {"grace_epochs": 3}),
        "search.early_stopping.grace_epochs",
        "leaves nothing to stop",
    ),
    (with_("architectures", ["lenet5", "alexnet8"]), "architectures", "one architecture"),
    (with_("seeds", [0, 1]), "seeds", "one seed"),
    (with_("search", None), "", "needs a design (robust-ray run) or a search section"),
]


@pytest.mark.parametrize("spec,path,message", BAD, ids=[b[1] or "no-search" for b in BAD])
def test_bad_search_names_file_and_key_and_exits_2(tmp_path, capsys, spec, path, message):
    f = write(tmp_path, spec)
    out = tmp_path / "out"
    assert main(["search", str(f), "--output", str(out)]) == 2
    err = capsys.readouterr().err
    where = f"{f}: {path}: " if path else f"{f}: "
    assert where in err and message in err, err
    assert not out.exists()


def test_good_search_validates_and_prints_its_space(tmp_path, capsys):
    assert main(["validate", str(write(tmp_path, GOOD))]) == 0
    out = capsys.readouterr().out
    assert "valid search 'search-spec'" in out and "step=0.5" in out and "0.98 <= acc_mnist-test" in out
    spec = load_spec(write(tmp_path, with_(f"{SPACE}.training.lr", {"low": 1e-4, "high": 1e-2, "log": True})))
    assert set(spec.search.space) == {"fgsm_l2", "training.lr"}


def test_a_recipe_option_is_a_dimension_of_the_recipe_s_own_kind(tmp_path, capsys):
    spec = load_spec(write(tmp_path, searching("steps", {"low": 1, "high": 5})))
    dist = spec.search.space["training.recipe_options.steps"]
    assert (dist.low, dist.high) == (1, 5)
    assert main(["validate", str(write(tmp_path, searching("eps", {"low": 0.05, "high": 0.3})))]) == 0
    out = capsys.readouterr().out
    assert "training.recipe_options.eps" in out and "FloatDistribution(high=0.3, log=False, low=0.05, step=None)" in out
    # whole-number options count points: 25 FGSM levels x 5 step counts
    assert (
        main(["validate", str(write(tmp_path, with_("search.trials", 126, searching("steps", {"low": 1, "high": 5}))))])
        == 2
    )
    assert "the space holds 125 points" in capsys.readouterr().err


def test_missing_warm_start_folder_is_refused_before_anything_runs(tmp_path, capsys):
    f = write(tmp_path, with_("search.warm_start", [str(tmp_path / "no-such-results")]))
    out = tmp_path / "out"
    assert main(["search", str(f), "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{f}: search.warm_start[0]: " in err and "no trials.parquet" in err
    assert not out.exists()


def test_run_refuses_a_search_only_spec_and_search_a_design_only_spec(tmp_path, capsys):
    f = write(tmp_path, GOOD)
    assert main(["run", str(f), "--output", str(tmp_path / "a")]) == 2
    assert "use `robust-ray search`" in capsys.readouterr().err
    design = with_("design", {"type": "one_factor", "factors": {"fgsm_l2": {"levels": [2.0]}}}, with_("search", None))
    assert main(["search", str(write(tmp_path, design)), "--output", str(tmp_path / "b")]) == 2
    assert "no search section" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
