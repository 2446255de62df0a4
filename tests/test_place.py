"""Placing datasets (issue 21 item 1): on one node the datasets that attack no model are
built in the driver while reference models train in their tasks; what lands in the object
store is the same either way."""

from __future__ import annotations

import numpy as np

from robust_ray.config import parse_spec
from robust_ray.plan import make_plan
from robust_ray.runtime import place

SPEC = {
    "name": "place", "architectures": ["lenet5"], "training": {"max_epochs": 1},
    "design": {"type": "one_factor", "factors": {"gaussian_l2": {"levels": [2.0], "per_class": 5},
                                                  "fgsm_l2": {"levels": [1.0], "per_class": 5}}},
    "suites": {"mnist-c": {"levels": [1.0, 3.0], "n": 50}},
}  # fmt: skip


def test_datasets_built_in_the_driver_are_the_ones_a_task_builds(ray_session, mnist5k, monkeypatch, tmp_path):
    monkeypatch.setenv("ROBUST_RAY_CACHE", "off")  # both ways build, neither loads the other's
    spec = parse_spec(SPEC)
    plan = make_plan(spec)
    logs = []
    here = place(plan, mnist5k, spec, None, log=logs.append, in_driver=True)
    there = place(plan, mnist5k, spec, None, log=lambda *_: None)
    assert f"datasets: {len(plan.datasets)}/{len(plan.datasets)} ready" in logs[-1]
    for digest, key in plan.datasets.items():
        a, b = ray_session.get(here[digest]), ray_session.get(there[digest])
        if key.kind == "model":
            assert a.keys() == b.keys()
            continue
        a, b = (a.data, b.data) if key.kind == "suite" else (a, b)
        np.testing.assert_array_equal(a.images, b.images)
        np.testing.assert_array_equal(a.labels, b.labels)
