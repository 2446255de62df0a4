"""Evaluation suites: exact levels, the test set's class counts per condition, the papers'
named conditions, aggregates."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from robust_ray.analysis.corruption import per_corruption
from robust_ray.analysis.pixel import flipped_share, pixel_index
from robust_ray.data import ImageSet, stratified_sample, to_float
from robust_ray.perturb import PERTURBATIONS, l2_distance
from robust_ray.perturb.corruptions import GRAYSCALE
from robust_ray.results import trial_rows, write_results
from robust_ray.storage import Storage
from robust_ray.suites import (
    PAPER_L2_LEVELS,
    TWO_FACTOR_69,
    Condition,
    Suite,
    build_suite,
    parse_two_factor,
    suite_def,
)
from robust_ray.trial import evaluate_suites, summarize


def _check_l2_suite(suite: Suite, test, levels):
    x = to_float(test.images)
    counts = np.bincount(test.labels, minlength=10)
    assert [g[1] for g in suite.groups()] == [float(v) for v in levels]
    for _, level, idx in suite.groups():
        assert (np.bincount(suite.data.labels[idx], minlength=10) == counts).all()
        d = l2_distance(to_float(suite.data.images[idx]), x)
        assert float((d - level).abs().max()) < 0.01


def test_mnist_c_levels_exact_and_class_counts_equal_the_test_sets(mnist5k):
    assert PAPER_L2_LEVELS == [0.5 * i for i in range(1, 25)]
    levels = [0.5, 6.0, 12.0]
    suite = build_suite(suite_def("mnist-c"), mnist5k.test, levels, None, 0)
    assert suite.data.images.dtype == np.float16
    _check_l2_suite(suite, mnist5k.test, levels)


def test_mnist_a_is_fgsm_against_the_reference_model(mnist5k, tiny_model):
    with pytest.raises(ValueError, match="reference model"):
        build_suite(suite_def("mnist-a"), mnist5k.test, [1.0], 100, 0)
    levels = [1.0, 4.0]
    suite = build_suite(suite_def("mnist-a"), mnist5k.test, levels, 200, 0, model=tiny_model)
    sub = mnist5k.test.subset(stratified_sample(mnist5k.test.labels, 200 / len(mnist5k.test), 0))
    _check_l2_suite(suite, sub, levels)
    # FGSM lowers the reference model's accuracy more at the larger level
    with torch.no_grad():
        acc = [
            float((tiny_model(to_float(suite.data.images[i])).argmax(1).numpy() == suite.data.labels[i]).mean())
            for _, _, i in suite.groups()
        ]
    assert acc[1] < acc[0]


def test_two_factor_69_named_as_in_003_table_4():
    sdef = suite_def("two-factor-69")
    conds = sdef.conditions(sdef.default_levels, (1, 28, 28))
    assert len(conds) == 69 == len(set(TWO_FACTOR_69))
    assert [c.level for c in conds] == list(map(float, range(1, 70)))
    assert conds[0].name == "CLEAN" and conds[0].perturbation is None
    by_name = {c.name: c for c in conds}
    assert by_name["SP0.1GA0.2"].level == 8  # 003: "Type 8 or (SP0.1GA0.2)"
    for name, k in [("SP0.1", 5), ("SP0.1GA0.1", 6), ("GA0.1", 24), ("GA0.1SP0.1", 25), ("SP0.1RL30", 43),
                    ("SP0.1RR30", 34), ("RL30", 40), ("RR30", 32)]:  # fmt: skip
        # 003 §III: c = type 1, 5, 6, 24, 25, 43, 34, 40, 32 (SP0.1 is SP0.1GA0, RL30 is SP0RL30, ...)
        assert any(c.level == k and (c.name == name or name in c.name) for c in conds), name
    assert parse_two_factor("SP0.1RL30") == ("sp>rotation", 0.1, -30.0)  # RL: counter-clockwise
    assert parse_two_factor("RR60SP0.15") == ("rotation>sp", 60.0, 0.15)
    with pytest.raises(ValueError):
        parse_two_factor("SP0.1XX3")


def test_two_factor_suite_applies_each_composition_in_its_order(mnist5k):
    levels = [1, 8, 25, 43, 63]
    suite = build_suite(suite_def("two-factor-69"), mnist5k.test, levels, 100, 0)
    assert suite.data.images.dtype == np.uint8  # 003 perturbed 8-bit images with MATLAB
    groups = {name: idx for name, _, idx in suite.groups()}
    sub = mnist5k.test.subset(stratified_sample(mnist5k.test.labels, 100 / len(mnist5k.test), 0))
    assert np.array_equal(suite.data.images[groups["CLEAN"]], sub.images)
    assert list(groups) == ["CLEAN", "SP0.1GA0.2", "GA0.1SP0.1", "SP0.1RL30", "RL30SP0.1"]
    img = lambda n: to_float(suite.data.images[groups[n]])  # noqa: E731
    clean = img("CLEAN")
    assert not torch.equal(img("SP0.1RL30"), img("RL30SP0.1"))
    assert bool((img("SP0.1RL30")[:, :, 0, 0] == 0).all())  # rotated last: black corners
    assert float((img("RL30SP0.1") == 1).float().mean()) > float((clean == 1).float().mean()) + 0.03
    for name in groups:
        assert (
            np.bincount(suite.data.labels[groups[name]], minlength=10)
            == np.bincount(suite.data.labels[groups["CLEAN"]], minlength=10)
        ).all()


def test_corruptions_suite_grayscale_subset_and_aggregate(mnist5k):
    sdef = suite_def("corruptions")
    gray = sdef.conditions([1, 2, 3, 4, 5], (1, 28, 28))
    assert len(gray) == 18 * 5 and not any("saturate" in c.name for c in gray)
    assert len(sdef.conditions([1, 2, 3, 4, 5], (3, 32, 32))) == 19 * 5
    # why saturate is left out on grayscale: it changes nothing at severities 1-3
    x = to_float(mnist5k.test.images[:8])
    for s in (1, 2, 3):
        assert torch.allclose(PERTURBATIONS.get("corruption:saturate")(x, s, 0), x, atol=1.5 / 255)
    suite = build_suite(sdef, mnist5k.test, [3], 20, 0)
    assert [g[0] for g in suite.groups()] == [f"{c}/3" for c in GRAYSCALE]
    rows = pd.DataFrame({"tidx": 0, "corruption": ["fog", "fog", "snow", "snow"], "accuracy": [0.9, 0.7, 0.5, 0.3]})
    scores = (
        per_corruption(rows, ["fog", "snow"], "corruption").iloc[0].to_dict()
    )  # 004 §4.2, as the analysis computes it
    assert scores == pytest.approx({"fog": 0.8, "snow": 0.4, "aggregate": 0.6})


def test_pixel_suite_reports_the_pixel_index_terms(mnist5k):
    sdef = suite_def("pixel")
    clean, *conds = sdef.conditions(sdef.default_levels, (1, 28, 28))
    assert clean.perturbation is None and clean.level == 0  # the same images unchanged, for w
    for c in conds:
        assert c.params["p"] == pytest.approx(c.level / 784)
        assert 0 < c.params["r"] <= 1 and 0 < c.params["a"] <= 1
    counts = [c for c in conds if c.params["experiment"] == "count"]
    assert [c.level for c in counts] == [4, 8, 16, 32, 64] and all(c.params["r"] == c.params["a"] == 1 for c in counts)
    # 002 eq. (8)-(12): 1000 of 10,000 recognised images turn wrong (w = 10 %), 64 pixels of
    # 224x224, full value range, a 200x200 area -> Pi = 98.34 (002 prints 98.30)
    assert pixel_index(flipped_share(1000, 10_000), 64 / 224**2, 1.0, 200**2 / 224**2) == pytest.approx(98.34, abs=0.01)
    suite = build_suite(sdef, mnist5k.test, [4, 64], 50, 0)
    assert len(list(suite.groups())) == 1 + len([c for c in conds if c.level in (4, 64)])
    sub = mnist5k.test.subset(stratified_sample(mnist5k.test.labels, 50 / len(mnist5k.test), 0))
    for _, n, idx in suite.groups():  # 8-bit storage keeps few-pixel values exact
        changed = (suite.data.images[idx] != sub.images).reshape(len(idx), -1).sum(1)
        if n == 0:  # the unchanged images
            assert changed.max() == 0
            continue
        assert changed.max() <= n and changed.mean() > 0.3 * n  # shift mode clips at 0 on background


class _FirstPixel(torch.nn.Module):
    """Predicts class 1 where the first pixel is bright, else class 0."""

    def forward(self, x):
        v = x.flatten(1)[:, 0]
        return torch.stack([1 - v, v], 1)


def test_pixel_w_counts_images_right_unchanged_and_wrong_changed(tmp_path):
    # 4 test images, labels 0 1 0 1; first pixel unchanged 0 255 255 255, changed 255 255 0 0.
    # Unchanged: right on images 0, 1, 3 (3 of 4). Changed: right on 1, 2 (2 of 4).
    # Image 0 and 3 turn wrong, image 2 turns right: w = 2/3, not (0.75 - 0.5) / 0.75 = 1/3.
    labels = np.array([0, 1, 0, 1])
    first = np.array([0, 255, 255, 255, 255, 255, 0, 0], np.uint8)
    images = np.zeros((8, 1, 2, 2), np.uint8)
    images[:, 0, 0, 0] = first
    conds = (Condition("clean", 0.0), Condition("n4", 4.0, "few_pixel", 4.0, params={"p": 4 / 784, "r": 1.0, "a": 1.0}))
    suite = Suite(
        ImageSet(images, np.tile(labels, 2)), np.repeat(np.float32([0, 4]), 4), conds, np.repeat(np.int16([0, 1]), 4)
    )
    settings = type("S", (), {"amp": False, "eval_batch_size": 64})
    rows = evaluate_suites(
        _FirstPixel(), {"pixel": suite, "plain": Suite(suite.data, suite.levels)}, torch.device("cpu"), settings
    )
    assert rows[:2] == [("pixel", "clean", 0.0, 0.75, 4, 0), ("pixel", "n4", 4.0, 0.5, 4, 2)]
    assert all(r[5] is None for r in rows[2:])  # no unchanged images to compare with
    assert pixel_index(flipped_share(2, 3), 4 / 784, 1.0, 1.0) == pytest.approx((2 / 3) / (4 / 784))
    assert summarize(rows)["acc_pixel"] == pytest.approx(0.625)
    # the metrics file carries the count; rows recorded before it existed give nulls
    old = [["pixel", "clean", 0.0, 0.75, 4]]
    plans = [{"trial_id": t, "arch": "lenet5", "seed": 0, "levels": {}} for t in ("t0", "t1")]
    outcomes = {
        "t0": {"status": "ok", "metrics_json": json.dumps(rows)},
        "t1": {"status": "ok", "metrics_json": json.dumps(old)},
    }
    trials, metrics = trial_rows("s", plans, outcomes)
    assert metrics["flipped"].tolist()[:2] == [0, 2] and metrics["flipped"].iloc[-1] is pd.NA
    write_results(Storage(str(tmp_path)), trials, metrics)
    back = pd.read_parquet(tmp_path / "metrics.parquet")
    assert back["flipped"].tolist()[:2] == [0, 2] and back["flipped"].isna().iloc[-1]


def test_suite_save_and_load_keep_the_conditions(tmp_path, mnist5k):
    suite = build_suite(suite_def("two-factor-69"), mnist5k.test, [1, 6], 30, 0)
    suite.save(tmp_path)
    back = Suite.load(tmp_path)
    assert back.conditions == suite.conditions
    assert [(n, lv, i.tolist()) for n, lv, i in back.groups()] == [(n, lv, i.tolist()) for n, lv, i in suite.groups()]
    assert np.array_equal(back.data.images, suite.data.images)


@pytest.mark.slow
@pytest.mark.full_mnist
def test_mnist_c_on_full_mnist_is_exact_at_all_24_levels(mnist_root):
    from robust_ray import data

    test = data.load("mnist", mnist_root, download=False).test
    suite = build_suite(suite_def("mnist-c"), test, PAPER_L2_LEVELS, None, 0)
    assert len(suite.data) == 240_000
    _check_l2_suite(suite, test, PAPER_L2_LEVELS)
