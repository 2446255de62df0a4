"""000 eq. (3) and §2.2.3: label error rate exact, wrong labels spread uniformly over the
other classes, class proportions preserved."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from robust_ray.perturb import label_error, label_error_rate
from robust_ray.perturb.labels import label_flow

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


@pytest.mark.parametrize("rate", [0.05, 0.1, 0.25, 0.5])
def test_mnist_counts_rate_exact_and_class_counts_kept(rate):
    y = np.repeat(np.arange(10), MNIST_TRAIN_COUNTS)
    rng = np.random.default_rng(0)
    y = y[rng.permutation(len(y))]
    noisy = label_error(y, rate, seed=3, num_classes=10)
    assert label_error_rate(noisy, y) == pytest.approx(rate, abs=1e-12)  # 60,000 * rate is a multiple of 10
    np.testing.assert_array_equal(np.bincount(noisy, minlength=10), MNIST_TRAIN_COUNTS)


@settings(max_examples=30, deadline=None)
@given(k=st.integers(2, 12), m=st.integers(0, 200))
def test_flow_rows_and_columns_sum_to_m_and_spread_evenly(k, m):
    f = label_flow(k, m)
    assert np.all(np.diag(f) == 0)
    assert np.all(f.sum(0) == m) and np.all(f.sum(1) == m)
    off = f[~np.eye(k, dtype=bool)]
    assert off.max() - off.min() <= 1


def test_wrong_labels_are_spread_over_the_other_classes():
    y = np.repeat(np.arange(10), 900)
    noisy = label_error(y, 0.1, seed=0, num_classes=10)
    confusion = np.zeros((10, 10), int)
    np.add.at(confusion, (y, noisy), 1)
    off = confusion[~np.eye(10, dtype=bool)]
    assert off.min() == off.max() == 10  # 90 wrong per class / 9 other classes


def test_seeded_and_rejects_impossible_rates():
    y = np.repeat(np.arange(10), 50)
    assert np.array_equal(label_error(y, 0.2, 1, 10), label_error(y, 0.2, 1, 10))
    assert not np.array_equal(label_error(y, 0.2, 1, 10), label_error(y, 0.2, 2, 10))
    with pytest.raises(ValueError, match="smallest class"):
        label_error(np.repeat(np.arange(10), [50] * 9 + [5]), 0.5, 0, 10)
