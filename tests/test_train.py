"""The train-to-convergence loop (000 §2.1): early stopping, fixed seeds, divergence."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from robust_ray.config import TrainingSpec
from robust_ray.data import ImageSet, stratified_sample
from robust_ray.models import build_model, training_loss
from robust_ray.recipes import RECIPES
from robust_ray.seeding import seed_everything
from robust_ray.train import accuracy, fit

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def small(mnist5k) -> ImageSet:
    return mnist5k.train.subset(stratified_sample(mnist5k.train.labels, 0.3, seed=1))  # 1,200


def lenet(seed=0):
    seed_everything(seed)
    return build_model("lenet5", 1, 10, (28, 28))


def numbers(r):
    """A fit's outcome without its timings."""
    return dataclasses.replace(r, history=[{k: v for k, v in h.items() if k != "train_s"} for h in r.history])


def settings(**kw) -> TrainingSpec:
    return TrainingSpec(**{"max_epochs": 2, "patience": 2, "batch_size": 64, **kw})


def test_learns_and_reports_training_fit(small, mnist5k):
    model = lenet()
    seen = []
    r = fit(model, small, settings(max_epochs=4), 0, CPU, on_epoch=seen.append)
    assert r.status == "ok" and r.epochs == len(r.history) == len(seen) == 4
    assert seen == r.history and [h["epoch"] for h in seen] == [1, 2, 3, 4]
    assert r.val_acc == max(h["val_acc"] for h in r.history) == r.history[r.best_epoch - 1]["val_acc"]
    assert accuracy(model, mnist5k.test.images, mnist5k.test.labels, CPU) > 0.8
    # training fit = accuracy of the kept weights on the training split (without validation)
    val = stratified_sample(small.labels, 0.1, 0)
    keep = np.setdiff1d(np.arange(len(small)), val)
    assert r.train_acc == pytest.approx(accuracy(model, small.images[keep], small.labels[keep], CPU))


def test_same_seed_same_weights_and_numbers(small):
    runs = []
    for _ in range(2):
        model = lenet(seed=3)
        r = fit(model, small, settings(), 3, CPU)
        runs.append((r, model.state_dict()))
    (r1, w1), (r2, w2) = runs
    assert numbers(r1) == numbers(r2)
    assert all(torch.equal(w1[k], w2[k]) for k in w1)
    model = lenet(seed=4)
    r3 = fit(model, small, settings(), 4, CPU)
    assert not torch.equal(model.state_dict()["conv1.weight"], w1["conv1.weight"])
    assert numbers(r3) != numbers(r1)


def test_early_stopping_waits_patience_epochs(small):
    # no gradient: the validation accuracy never improves after epoch 1
    frozen = lambda model, x, y: 0.0 * model(x).sum()  # noqa: E731
    r = fit(lenet(), small, settings(max_epochs=10, patience=3), 0, CPU, objective=frozen)
    assert (r.status, r.epochs, r.best_epoch) == ("ok", 4, 1)


def test_max_epochs_caps_training(small):
    r = fit(lenet(), small, settings(max_epochs=1, patience=5), 0, CPU)
    assert (r.epochs, r.best_epoch) == (1, 1)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_huge_learning_rate_diverges_without_raising(small, optimizer):
    seen = []
    r = RECIPES.get("standard")(lenet(), small, settings(lr=1e6, optimizer=optimizer), 0, CPU, seen.append)
    assert r.status == "diverged" and r.epochs == 1 and r.best_epoch == 0 and not r.has_weights
    assert not math.isfinite(r.train_loss) and not math.isfinite(seen[-1]["train_loss"])
    assert math.isnan(r.train_acc) and math.isnan(r.val_acc)


def test_divergence_after_good_epochs_keeps_the_best_weights(small):
    steps = {"n": 0}
    per_epoch = math.ceil(len(small) * 0.9 / 64)

    def nan_from_epoch_3(model, x, y):
        steps["n"] += 1
        loss = training_loss(model, x, y)
        return loss * float("nan") if steps["n"] > 2 * per_epoch else loss

    model = lenet()
    r = fit(model, small, settings(max_epochs=5, patience=5), 0, CPU, objective=nan_from_epoch_3)
    assert r.status == "diverged" and r.epochs == 3 and r.best_epoch in (1, 2) and r.has_weights
    assert math.isnan(r.history[-1]["train_loss"]) and len(r.history) == 3
    # the NaN step poisoned the live weights; the kept ones are the best epoch's, finite
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert r.val_acc == r.history[r.best_epoch - 1]["val_acc"] and 0.5 < r.train_acc <= 1


def test_nan_images_diverge(small):
    images = small.images.astype(np.float32) / 255
    images[::7] = np.nan
    r = fit(lenet(), ImageSet(images, small.labels), settings(), 0, CPU)
    assert r.status == "diverged"
