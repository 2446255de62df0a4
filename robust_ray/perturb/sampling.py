"""Sampling-distribution perturbations of a training set."""

from __future__ import annotations

import numpy as np


def imbalance(counts: np.ndarray) -> float:
    """The data's class imbalance CI: CI_l of 000 eq. (2) for its smallest class."""
    counts = np.asarray(counts)
    return float(1.0 - counts.min() / counts.max())


def minority_count(counts: np.ndarray, ci: float) -> int:
    """Samples every non-majority class keeps at imbalance ``ci`` (000 eq. 2)."""
    return int(round((1.0 - ci) * np.asarray(counts).max()))


def class_imbalance(labels: np.ndarray, ci: float, seed: int, num_classes: int) -> np.ndarray:
    """Indices of a subset with class imbalance CI = ``ci`` (000 eq. 2, §2.2.2).

    The majority class keeps all its samples; every other class is reduced (seeded random
    choice) to the same count round((1 - ci) * n_max). A level below what the data already
    has cannot be reached by removing samples and is an error.
    """
    labels = np.asarray(labels)
    counts = np.bincount(labels, minlength=num_classes)
    major = int(np.argmax(counts))
    keep = minority_count(counts, ci)
    others = np.delete(counts, major)
    if keep > others.min():
        raise ValueError(
            f"class imbalance {ci} is below the data's own CI {imbalance(counts):.4f}: "
            f"it needs {keep} samples in every class, the smallest has {others.min()}"
        )
    rng = np.random.default_rng(seed)
    picked = [np.flatnonzero(labels == major)]
    for c in range(num_classes):
        if c != major:
            picked.append(rng.choice(np.flatnonzero(labels == c), size=keep, replace=False))
    return np.sort(np.concatenate(picked))
