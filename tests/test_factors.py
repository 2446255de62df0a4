"""Training-set factors: exact class counts (000 eq. 2), exact error rates (eq. 3), pools."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robust_ray.data import to_float
from robust_ray.factors import augment_options, compose, factor_def, perturb_pool, perturbation_options, pick_sources
from robust_ray.perturb import class_imbalance, imbalance, label_error, label_error_rate


@pytest.mark.parametrize("ci", [0.25, 0.4, 0.6])
def test_class_imbalance_exact_counts(mnist5k, ci):
    labels = mnist5k.train.labels
    counts = np.bincount(labels, minlength=10)
    kept = np.bincount(labels[class_imbalance(labels, ci, 0, 10)], minlength=10)
    major = int(np.argmax(counts))
    assert kept[major] == counts[major]
    others = np.delete(kept, major)
    assert (others == round((1 - ci) * counts[major])).all()
    assert imbalance(kept) == pytest.approx(ci, abs=1 / counts[major])


@pytest.mark.parametrize("rate", [0.05, 0.1, 0.5])
def test_label_error_exact_rate_counts_and_spread(mnist5k, rate):
    labels = mnist5k.train.labels
    noisy = label_error(labels, rate, 0, 10)
    assert label_error_rate(noisy, labels) == pytest.approx(rate, abs=10 / len(labels))
    assert (np.bincount(noisy, minlength=10) == np.bincount(labels, minlength=10)).all()
    wrong = np.zeros((10, 10), int)
    np.add.at(wrong, (labels[noisy != labels], noisy[noisy != labels]), 1)
    off = wrong[~np.eye(10, dtype=bool)].reshape(10, 9)
    assert off.max() - off.min() <= 1  # spread uniformly over the other classes


def test_factor_options_merge_per_class_with_the_perturbations_own():
    opts = augment_options("few_pixel").model_validate({"per_class": 5, "side": 0.5})
    assert opts.per_class == 5 and opts.side == 0.5
    assert perturbation_options("few_pixel", {"per_class": 5, "side": 0.5})["side"] == 0.5
    assert "per_class" not in perturbation_options("few_pixel", {"per_class": 5})
    with pytest.raises(ValueError):
        augment_options("sp>gaussian").model_validate({"per_class": 5})  # which stage is fixed?


def test_gaussian_pool_exact_levels_and_class_counts(mnist5k):
    pool = perturb_pool(mnist5k.train, "gaussian_l2", 4.0, 30, seed=1, num_classes=10)
    assert pool.images.dtype == np.float16 and len(pool) == 300
    assert (np.bincount(pool.labels, minlength=10) == 30).all()
    # every perturbed copy is 4.0 from some clean image of its class (its source)
    x = to_float(mnist5k.train.images)
    y = to_float(pool.images)
    d = torch.cdist(y.flatten(1).double(), x.flatten(1).double())
    assert float((d.min(1).values - 4.0).abs().max()) < 0.01


def test_options_reach_the_perturbation(mnist5k):
    a = perturb_pool(mnist5k.train, "few_pixel", 16, 5, 0, 10, {"side": 0.3})
    b = perturb_pool(mnist5k.train, "few_pixel", 16, 5, 0, 10, {"side": 1.0})
    changed = lambda pool, src: ((to_float(pool.images) - src).abs() > 1e-3).flatten(1)  # float16 storage  # noqa: E731
    src = to_float(mnist5k.train.images[pick_sources(mnist5k.train.labels, 5, 0, 10)])
    edge = torch.ones(28, 28, dtype=torch.bool)
    edge[6:22, 6:22] = False
    assert not bool((changed(a, src) & edge.flatten()).any())
    assert bool((changed(b, src) & edge.flatten()).any())


def test_fgsm_pool_needs_and_uses_the_reference_model(mnist5k, tiny_model):
    with pytest.raises(ValueError, match="reference model"):
        perturb_pool(mnist5k.train, "fgsm_l2", 2.0, 3, 0, 10)
    pool = perturb_pool(mnist5k.train, "fgsm_l2", 2.0, 3, 0, 10, model=tiny_model)
    assert len(pool) == 30 and np.isfinite(pool.images.astype(np.float32)).all()
    # every stored copy is 2.0 from its own source image (float16 storage: within 0.01)
    src = to_float(mnist5k.train.images[pick_sources(mnist5k.train.labels, 3, 0, 10)])
    d = (to_float(pool.images) - src).flatten(1).double().norm(dim=1)
    assert float((d - 2.0).abs().max()) < 0.01


def test_composition_at_level_zero_still_adds_its_pool(mnist5k):
    fdef = factor_def("sp>gaussian")
    assert not fdef.is_identity(0.0)  # SP0.1 then GA0 is not the clean set
    assert factor_def("gaussian_l2").is_identity(0.0) and factor_def("gaussian_l2").is_identity(None)
    pool = perturb_pool(mnist5k.train, "sp>gaussian", 0.0, 2, 0, 10, {"first": 0.1})
    train, achieved = compose(mnist5k.train, {"sp>gaussian": 0.0}, {"sp>gaussian": pool}, 0, 10)
    assert len(train) == len(mnist5k.train) + 20 and achieved == {"sp>gaussian": 0.0}
