"""Label perturbations of a training set."""

from __future__ import annotations

import numpy as np


def label_flow(num_classes: int, per_class: int) -> np.ndarray:
    """Integer matrix M[c, j]: how many samples of class c get the wrong label j.

    Every row and every column sums to ``per_class`` and the off-diagonal entries differ by
    at most one (a circulant spread of the remainder), so wrong labels are spread uniformly
    over the other classes *and* every class keeps its size (000 §2.2.3).
    """
    k = num_classes
    q, r = divmod(per_class, k - 1)
    m = np.zeros((k, k), dtype=np.int64)
    for offset in range(1, k):
        m[np.arange(k), (np.arange(k) + offset) % k] = q + (offset <= r)
    return m


def label_error(labels: np.ndarray, rate: float, seed: int, num_classes: int) -> np.ndarray:
    """New labels with a label error rate LD = ``rate`` (000 eq. 3).

    Each class gets the same number m = round(rate * N / K) of wrong labels, spread
    uniformly over the other K - 1 classes by :func:`label_flow`; which samples of a class
    are relabelled is a seeded random choice. Class counts are exactly preserved; the
    achieved rate is K*m/N (exact whenever rate*N is a multiple of K).
    """
    labels = np.asarray(labels)
    counts = np.bincount(labels, minlength=num_classes)
    m = int(round(rate * len(labels) / num_classes))
    if m == 0:
        return labels.copy()
    if m > counts.min():
        raise ValueError(
            f"label error rate {rate} needs {m} wrong labels in every class, but the smallest class has {counts.min()}"
        )
    flow = label_flow(num_classes, m)
    rng = np.random.default_rng(seed)
    out = labels.copy()
    for c in range(num_classes):
        chosen = rng.choice(np.flatnonzero(labels == c), size=m, replace=False)
        out[chosen] = rng.permutation(np.repeat(np.arange(num_classes), flow[c]))
    return out


def label_error_rate(noisy: np.ndarray, true: np.ndarray) -> float:
    """LD of 000 eq. (3): the fraction of samples whose label is not the true one."""
    return float(np.mean(np.asarray(noisy) != np.asarray(true)))
