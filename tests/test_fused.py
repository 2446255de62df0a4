"""Fused training (issue 19 item 1): K LeNet-5 models stacked with torch.func train as K
separate :func:`robust_ray.train.fit` calls would: the same batches in the same order, the
same optimiser steps, their own early stopping, and a NaN in one model's data diverges that
model only."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robust_ray.data import ImageSet
from robust_ray.fused import fit_fused, fusable
from robust_ray.models import build_model
from robust_ray.seeding import seed_everything
from robust_ray.spec import TrainingSpec
from robust_ray.train import fit

CPU = torch.device("cpu")


def models(seeds):
    out = []
    for s in seeds:
        seed_everything(s)  # as a trial builds its model
        out.append(build_model("lenet5", 1, 10, (28, 28)))
    return out


def settings(**kw):
    return TrainingSpec(**{"batch_size": 64, "device": "cpu", "amp": False, **kw})


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_the_first_epoch_takes_the_same_steps_as_unfused_training(mnist5k, optimizer):
    # sizes differ (a padded, masked last batch; one model with fewer steps than the others)
    tr = mnist5k.train
    trains = [tr.subset(np.arange(300)), tr.subset(np.arange(300, 520)), tr.subset(np.arange(600, 1000))]
    seeds = [0, 1, 2]
    st = settings(max_epochs=1, optimizer=optimizer, lr=0.01 if optimizer == "sgd" else 1e-3)
    alone = models(seeds)
    for m, t, s in zip(alone, trains, seeds):
        fit(m, t, st, s, CPU)
    fused = models(seeds)
    fit_fused(fused, trains, st, seeds, CPU)
    for a, b in zip(alone, fused):
        for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
            # a few steps of float32 arithmetic in another order: differences of ~1e-6
            torch.testing.assert_close(pb, pa, rtol=1e-4, atol=1e-5, msg=name)


def test_fused_training_matches_unfused_accuracies_and_stops_each_model_on_its_own(mnist5k):
    tr = mnist5k.train
    rng = np.random.default_rng(0)
    trains = [tr.subset(np.arange(2000)), tr.subset(np.arange(2000, 3500)),
              ImageSet(tr.images[:1500], rng.permutation(tr.labels[:1500])), tr.subset(np.arange(1000, 3000))]  # fmt: skip
    seeds = [0, 1, 2, 3]
    st = settings(max_epochs=3, patience=1)
    alone = [fit(m, t, st, s, CPU) for m, t, s in zip(models(seeds), trains, seeds)]
    fused = fit_fused(models(seeds), trains, st, seeds, CPU)
    for a, b in zip(alone, fused):
        assert (b.status, len(b.history)) == (a.status, len(a.history))
        # reductions in another order drift apart over epochs; 2 points of validation
        # accuracy on a few hundred images is well inside seed-to-seed spread
        assert b.val_acc == pytest.approx(a.val_acc, abs=0.02)
        assert b.history[0]["train_loss"] == pytest.approx(a.history[0]["train_loss"], rel=1e-3)
    assert fused[2].val_acc < 0.3  # random labels: it learns nothing, as unfused


def test_a_nan_in_one_models_data_diverges_that_model_only(mnist5k):
    tr = mnist5k.train
    bad = tr.images[:800].astype(np.float16) / 255
    bad[5] = np.nan
    trains = [tr.subset(np.arange(800)), ImageSet(bad, tr.labels[:800])]
    out = fit_fused(models([0, 1]), trains, settings(max_epochs=2, patience=2), [0, 1], CPU)
    assert out[1].status == "diverged" and out[1].best_epoch == 0 and np.isnan(out[1].val_acc)
    assert out[0].status == "ok" and out[0].epochs == 2 and out[0].val_acc > 0.5


def test_models_that_vmap_cannot_train_as_unfused_are_refused():
    seed_everything(0)
    assert "dropout" in fusable(build_model("alexnet8", 1, 10, (28, 28)))
    assert fusable(build_model("lenet5", 1, 10, (28, 28))) is None
    with pytest.raises(ValueError, match="cannot fuse AlexNet8"):
        fit_fused([build_model("alexnet8", 1, 10, (28, 28))], [ImageSet(np.zeros((4, 1, 28, 28), np.uint8), np.zeros(4, np.int64))],
                  settings(), [0], CPU)  # fmt: skip
