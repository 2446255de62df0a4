"""Bad perturbation input is a clear error naming the spec key, before anything is built."""

from __future__ import annotations

import pytest

from robust_ray.config import parse_spec
from robust_ray.errors import SpecError
from robust_ray.factors import factor_def
from robust_ray.plan import design_rows

BASE = {"name": "t", "architectures": ["lenet5"]}


def _factor(name, **fs):
    return {"design": {"factors": {name: fs}}}


def _suite(key, **ss):
    return {"design": {"factors": {"gaussian_l2": {"levels": [1.0]}}}, "suites": {key: ss}}


@pytest.mark.parametrize(
    "part, path, words",
    [
        (_factor("gausian_l2", levels=[1]), "design.factors.gausian_l2", "unknown factor"),
        (_factor("gaussian_l2", levels=[1, 40]), "design.factors.gaussian_l2.levels[1]", "can reach"),
        (_factor("fgsm_l2", levels=[-1]), "design.factors.fgsm_l2.levels[0]", "below 0"),
        (_factor("corruption:fog", levels=[1, 6]), "design.factors.corruption:fog.levels[1]", "at most 5"),
        (_factor("corruption:fog", levels=[2.5]), "design.factors.corruption:fog.levels[0]", "whole number"),
        (_factor("corruption:fog", levels=[-1]), "design.factors.corruption:fog.levels[0]", "below 1 (severity, 1-5)"),
        (
            {"design": {"type": "list", "factors": {"corruption:fog": {}}, "rows": [{"corruption:fog": -1}]}},
            "design.rows[0].corruption:fog",
            "below 1",
        ),
        (_factor("corruption:rain", levels=[1]), "design.factors.corruption:rain", "unknown factor"),
        (_factor("few_pixel", levels=[4, 40], side=0.2), "design.factors.few_pixel.levels[1]", "do not fit"),
        (_factor("few_pixel", levels=[4], sidee=0.2), "design.factors.few_pixel.sidee", "unknown option"),
        (_factor("few_pixel", levels=[4], value_range=2), "design.factors.few_pixel.value_range", "less than or equal"),
        (_factor("salt_pepper", levels=[1.5]), "design.factors.salt_pepper.levels[0]", "at most 1"),
        (_factor("sp>gaussian", levels=[0.1]), "design.factors.sp>gaussian", "exactly one fixed stage"),
        (_factor("sp>rotation", levels=[30, 270], first=0.1), "design.factors.sp>rotation.levels[1]", "at most 180"),
        (_factor("class_imbalance", levels=[1.2]), "design.factors.class_imbalance.levels[0]", "must be in"),
        (_suite("corruptions", levels=[0, 1]), "suites.corruptions.levels[0]", "no level 0"),
        (_suite("x", type="corruption:fog", levels=[1, 0]), "suites.x.levels[1]", "below 1 (severity, 1-5)"),
        (_suite("x", type="corruption:fog", levels=[6]), "suites.x.levels[0]", "at most 5"),
        (_suite("two-factor-69", levels=[70]), "suites.two-factor-69.levels[0]", "1-69"),
        (_suite("x", type="sp>gaussian", levels=[0.1]), "suites.x", "exactly one fixed stage"),
        (_suite("x", type="few_pixel", levels=[4], sides=0.5), "suites.x.sides", "unknown option"),
        (_suite("mnist-test", value_range=0.5), "suites.mnist-test.value_range", "unknown key"),
        (_suite("mnist-c", levels=[0.5, 30]), "suites.mnist-c.levels[1]", "can reach"),
    ],
)
def test_bad_input_names_the_key(part, path, words):
    with pytest.raises(SpecError) as e:
        parse_spec({**BASE, **part}, "sweep.yaml")
    assert e.value.path == path and words in e.value.message


def test_good_specs_pass():
    parse_spec({**BASE, **_factor("sp>gaussian", levels=[0.1, 0.15, 0.2], first=0.1)})
    parse_spec({**BASE, **_factor("few_pixel", levels=[4, 64], side=0.5, mode="shift")})
    parse_spec({**BASE, **_suite("corruptions", levels=[1, 5])})
    parse_spec({**BASE, **_suite("mnist-a")})


def test_corruption_severity_0_is_only_not_applied_for_training():
    spec = parse_spec({**BASE, **_factor("corruption:fog", levels=[1, 5])})
    rows = design_rows(spec)
    assert rows == [{"corruption:fog": 0.0}, {"corruption:fog": 1.0}, {"corruption:fog": 5.0}]
    written = parse_spec({**BASE, **_factor("corruption:fog", levels=[0, 1, 5], baseline=0)})  # said explicitly
    assert design_rows(written) == rows
    assert factor_def("corruption:fog").is_identity(rows[0]["corruption:fog"])  # the clean set, no pool
    parse_spec({**BASE, **_suite("x", type="corruption:fog", levels=[1, 2, 3, 4, 5])})
