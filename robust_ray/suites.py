"""Evaluation suites: the test set, and the test set under a perturbation at many levels.

A suite is built once per sweep from the base test split with a fixed seed (it is the
benchmark, the same for every trial), stored compactly (uint8 clean, float16 perturbed),
and evaluated level by level. ``mnist-c`` is 000 §2.3's random-noise benchmark: every
test image at each of 24 Gaussian L2 levels, so each level has the test set's class counts.
Any registered image perturbation can also be named as a suite ``type`` with its levels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .data import ImageSet, stratified_sample, to_float
from .perturb import PERTURBATIONS
from .registry import Registry
from .seeding import derive_seed

PAPER_L2_LEVELS = [round(0.5 * i, 1) for i in range(1, 25)]  # 0.5 ... 12.0 (000 §2.3)


@dataclass(frozen=True)
class SuiteDef:
    name: str
    perturbation: str | None  # None: the clean test set
    default_levels: list[float] | None  # None: levels must be given in the spec
    description: str


@dataclass(frozen=True)
class Suite:
    """Images of every level stacked; ``levels[i]`` is the level image ``i`` was made at."""

    data: ImageSet
    levels: np.ndarray  # [N] float32

    @property
    def nbytes(self) -> int:
        return self.data.nbytes + self.levels.nbytes


SUITES: Registry[SuiteDef] = Registry("suite")
for _name in ("clean", "mnist-test"):
    SUITES.register(_name, SuiteDef(_name, None, [0.0], "the clean test set (000 §2.3 MNIST-Test)"))
SUITES.register(
    "mnist-c",
    SuiteDef("mnist-c", "gaussian_l2", PAPER_L2_LEVELS, "Gaussian noise at 24 exact L2 levels (000 §2.3 MNIST-C)"),
)


def suite_def(type_name: str) -> SuiteDef:
    """A registered suite, or a generic one for any registered image perturbation."""
    if type_name in SUITES:
        return SUITES.get(type_name)
    if type_name in PERTURBATIONS:
        return SuiteDef(type_name, type_name, None, f"test set under {type_name}")
    known = sorted([*SUITES, *PERTURBATIONS])
    raise KeyError(f"unknown suite type {type_name!r}; known: {', '.join(known)}")


def build_suite(
    sdef: SuiteDef, test: ImageSet, levels: list[float], n: int | None, seed: int, chunk: int = 4096
) -> Suite:
    """The suite's images: ``n`` test images (stratified; all when None) at every level.

    One noise seed per image index, shared by all levels (common random numbers): images
    differ between levels only by the level, so damage grows monotonically with it.
    """
    if n is not None and n < len(test):
        test = test.subset(stratified_sample(test.labels, n / len(test), seed))
    if sdef.perturbation is None:
        lv = np.full(len(test), levels[0], np.float32)
        return Suite(test, lv)
    fn = PERTURBATIONS.get(sdef.perturbation).fn
    x = to_float(test.images)
    out = np.empty((len(levels) * len(test), *test.images.shape[1:]), np.float16)
    for li, level in enumerate(levels):
        for start in range(0, len(test), chunk):
            part = x[start : start + chunk]
            with torch.no_grad():
                y = fn(part, level, derive_seed(seed, sdef.name, start)) if level else part
            out[li * len(test) + start : li * len(test) + start + len(part)] = y.numpy().astype(np.float16)
    labels = np.tile(test.labels, len(levels))
    lv = np.repeat(np.asarray(levels, np.float32), len(test))
    return Suite(ImageSet(out, labels), lv)
