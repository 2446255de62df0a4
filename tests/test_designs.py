"""Experimental designs: grid, one_factor, orthogonal (Taguchi, from pyDOE3), list."""

import itertools
from collections import Counter

import pytest

from robust_ray.config import parse_spec
from robust_ray.designs import DESIGNS, _columns, choose_orthogonal_array
from robust_ray.errors import SpecError
from robust_ray.plan import make_plan

RQ6 = {  # 000 §2.2.5: four factors x five levels
    "gaussian_l2": ([0.0, 2.0, 4.0, 6.0, 8.0], 0.0),
    "fgsm_l2": ([0.0, 2.0, 4.0, 6.0, 8.0], 0.0),
    "class_imbalance": ([0.2, 0.25, 0.3, 0.35, 0.4], None),
    "label_error": ([0.0, 0.05, 0.1, 0.15, 0.2], 0.0),
}


def test_rq6_gets_l25_and_every_pair_of_factors_is_balanced():
    assert choose_orthogonal_array([5, 5, 5, 5])[0] == "L25(5^6)"
    rows = DESIGNS.get("orthogonal")(RQ6, [])
    assert len(rows) == 25
    for a, b in itertools.combinations(RQ6, 2):
        pairs = Counter((r[a], r[b]) for r in rows)
        assert len(pairs) == 25 and set(pairs.values()) == {1}, (a, b)


@pytest.mark.parametrize("counts", [[2, 2, 2], [3, 3, 3, 3], [6, 3, 3], [2, 3, 3, 3], [4, 4, 4], [2, 4, 4], [3] * 6])
def test_chosen_arrays_are_balanced_for_mixed_levels(counts):
    factors = {f"f{i}": ([float(v) for v in range(n)], 0.0) for i, n in enumerate(counts)}
    rows = DESIGNS.get("orthogonal")(factors, [])
    name, _ = choose_orthogonal_array(counts)
    assert len(rows) == int(name[1 : name.index("(")])
    for a, b in itertools.combinations(factors, 2):
        pairs = Counter((r[a], r[b]) for r in rows)
        assert len(pairs) == len(factors[a][0]) * len(factors[b][0])
        assert len(set(pairs.values())) == 1  # each level pair equally often


def test_no_array_fits_is_a_clear_error():
    from pyDOE3 import get_orthogonal_array

    assert _columns(get_orthogonal_array("L18(6^1 3^6)")) == [6, 3, 3, 3, 3, 3, 3]
    with pytest.raises(ValueError, match="7, 7"):
        choose_orthogonal_array([7, 7])


def test_grid_and_one_factor_rows():
    f = {"a": ([0.0, 1.0, 2.0], 0.0), "b": ([0.5, 0.6], None)}
    assert len(DESIGNS.get("grid")(f, [])) == 6
    rows = DESIGNS.get("one_factor")(f, [])
    assert rows == [
        {"a": 0.0, "b": None},
        {"a": 1.0, "b": None},
        {"a": 2.0, "b": None},
        {"a": 0.0, "b": 0.5},
        {"a": 0.0, "b": 0.6},
    ]


def spec(design: dict) -> dict:
    return {"name": "d", "architectures": ["lenet5"], "seeds": [0, 1], "design": design}


def test_list_design_fills_baselines_and_crosses_with_architectures_and_seeds():
    s = parse_spec(
        spec(
            {
                "type": "list",
                "factors": {"gaussian_l2": {"per_class": 10}, "label_error": {}},
                "rows": [{"gaussian_l2": 2.0}, {"gaussian_l2": 4.0, "label_error": 0.1}],
            }
        )
    )
    plan = make_plan(s)
    assert [t.levels for t in plan.trials[::2]] == [
        {"gaussian_l2": 2.0, "label_error": 0.0},
        {"gaussian_l2": 4.0, "label_error": 0.1},
    ]
    assert [t.seed for t in plan.trials] == [0, 1, 0, 1]


@pytest.mark.parametrize(
    "design,path",
    [
        ({"type": "list", "factors": {"label_error": {}}}, "design.rows"),
        (
            {"type": "list", "factors": {"label_error": {}}, "rows": [{"gaussian_l2": 1.0}]},
            "design.rows[0].gaussian_l2",
        ),
        (
            {"type": "list", "factors": {"label_error": {}}, "rows": [{"label_error": 2.0}]},
            "design.rows[0].label_error",
        ),
        ({"type": "grid", "factors": {"label_error": {}}}, "design.factors.label_error.levels"),
        (
            {
                "type": "orthogonal",
                "factors": {
                    "label_error": {"levels": [i / 10 for i in range(7)]},
                    "gaussian_l2": {"levels": [float(i) for i in range(1, 8)]},
                },
            },
            "design.factors",
        ),
    ],
)
def test_bad_designs_name_the_key(design, path):
    with pytest.raises(SpecError) as e:
        parse_spec(spec(design), "x.yaml")
    assert e.value.path == path


def test_recipes_cross_with_design_architectures_and_seeds():
    s = parse_spec(
        {
            "name": "r",
            "architectures": ["lenet5"],
            "seeds": [0, 1],
            "recipes": {"standard": {}, "pgd_at": {"eps": 0.1, "steps": 3}},
            "design": {"type": "one_factor", "factors": {"label_error": {"levels": [0.1]}}},
        }
    )
    trials = make_plan(s).trials
    assert len(trials) == 2 * 2 * 2
    assert {(t.recipe, t.seed) for t in trials} == {(r, sd) for r in ("standard", "pgd_at") for sd in (0, 1)}
    assert {t.recipe_options.get("eps") for t in trials if t.recipe == "pgd_at"} == {0.1}


@pytest.mark.parametrize(
    "extra,path",
    [
        ({"recipes": {"pgd": {}}}, "recipes.pgd"),
        ({"recipes": {"pgd_at": {"epz": 0.1}}}, "recipes.pgd_at.epz"),
        ({"recipes": {"standard": {}}, "training": {"recipe": "pgd_at"}}, "recipes"),
    ],
)
def test_bad_recipes_name_the_key(extra, path):
    with pytest.raises(SpecError) as e:
        parse_spec({**spec({"type": "one_factor", "factors": {"label_error": {"levels": [0.1]}}}), **extra}, "x.yaml")
    assert e.value.path == path


@pytest.mark.parametrize("counts, array", [([2, 3], "L36(3^23)"), ([4, 2], "L32(2^1 4^9)")])
def test_orthogonal_falls_back_to_the_grid_where_the_array_needs_more_runs(counts, array):
    from robust_ray.designs import orthogonal_fallback

    factors = {f"f{i}": ([float(v) for v in range(1, n + 1)], None) for i, n in enumerate(counts)}
    assert choose_orthogonal_array(counts)[0] == array  # what pyDOE3 offers: more runs than the grid
    rows = DESIGNS.get("orthogonal")(factors, [])
    assert rows == DESIGNS.get("grid")(factors, []) and len(rows) == counts[0] * counts[1]
    assert orthogonal_fallback(counts) == (
        f"orthogonal: the smallest array for levels {counts[0]} x {counts[1]} is {array} "
        f"({array[1:3]} runs), more than the full grid ({counts[0] * counts[1]} runs); running the grid"
    )
    assert orthogonal_fallback([5, 5, 5, 5]) is None  # L25 against a 625-run grid


def test_validate_says_when_an_orthogonal_design_runs_the_grid(tmp_path, capsys):
    from robust_ray.cli import main

    path = tmp_path / "oa.yaml"
    path.write_text("name: oa\narchitectures: [lenet5]\ndesign:\n  type: orthogonal\n  factors:\n"
                    "    gaussian_l2: {levels: [1.0, 2.0]}\n    label_error: {levels: [0.1, 0.2, 0.3]}\n"
                    "suites: {mnist-test: {n: 100}}\n")  # fmt: skip
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert (
        "orthogonal: the smallest array for levels 2 x 3 is L36(3^23) (36 runs), more than the full grid (6 runs)"
        in out
    )
    assert "6 trials" in out
