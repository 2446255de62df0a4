"""Training-set factors: how a perturbation acts on a training set, registered by name.

Three stages, always applied in this order when a trial composes its training set:

1. ``sample``  — choose which clean samples stay (class imbalance, 000 §2.2.2);
2. ``augment`` — add K perturbed copies per class of clean images (every registered image
   perturbation is an augment factor, 000 §2.2.1);
3. ``relabel`` — change labels of the composed set (label error rate, 000 §2.2.3).

Augment pools are datasets of their own (built once, shared through the object store);
sample and relabel are cheap index/label operations done inside the trial.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from .data import ImageSet, concat
from .perturb import PERTURBATIONS, NoOptions, apply_to_array, class_imbalance, imbalance, label_error
from .perturb.base import Shape

Stage = Literal["sample", "augment", "relabel"]


class AugmentOptions(BaseModel):
    """Options of an augment factor, written next to ``levels`` in the spec."""

    model_config = ConfigDict(extra="forbid")
    per_class: int = Field(2000, ge=1, description="perturbed copies added per class (000 §2.2.1: 2000)")


@functools.cache
def augment_options(name: str) -> type[BaseModel]:
    """``per_class`` plus the perturbation's own options (few_pixel's value_range, ...)."""
    own = PERTURBATIONS.get(name).options
    if own is NoOptions:
        return AugmentOptions
    return type(f"{own.__name__}WithPerClass", (AugmentOptions, own), {})


def perturbation_options(name: str, options: BaseModel | dict | None) -> dict:
    """The perturbation's own options (validated, defaults filled) out of a factor's options:
    what a pool's content key and its build need besides ``per_class``. Options typed by the
    spec (:attr:`~robust_ray.spec.FactorSpec.options`) are not validated again."""
    model = augment_options(name)
    if isinstance(options, model):
        opts = options
    else:
        opts = model.model_validate(options.model_dump() if isinstance(options, BaseModel) else (options or {}))
    return {k: v for k, v in opts.model_dump().items() if k != "per_class"}


@dataclass(frozen=True)
class FactorDef:
    name: str
    stage: Stage
    options: type[BaseModel]
    identity: float | None  # the level at which the factor changes nothing (None: no such level)
    min_level: float
    max_level: float  # exclusive
    unit: str

    def check_level(
        self, level: float, options: BaseModel | dict | None = None, shape: Shape | None = None
    ) -> str | None:
        """Why ``level`` (with these factor options, on images of ``shape``) is out of range.
        The identity level is always allowed: it means "not applied" (no pool), even where the
        perturbation itself starts above it (corruption severities are 1-5, 0 is no corruption)."""
        if self.stage == "augment" and self.is_identity(level):
            return None
        if self.stage == "augment":
            own = perturbation_options(self.name, options) if options is not None else None
            return PERTURBATIONS.get(self.name).check_level(level, own, shape)
        if not (self.min_level <= level < self.max_level):
            return f"{self.name} level {level} must be in [{self.min_level}, {self.max_level}) ({self.unit})"
        return None

    def is_identity(self, level: float | None) -> bool:
        """True when the factor at ``level`` leaves the training set as it is (no pool)."""
        return level is None or (self.identity is not None and level == self.identity)


_SPECIAL: dict[str, FactorDef] = {
    "class_imbalance": FactorDef("class_imbalance", "sample", NoOptions, None, 0.0, 1.0, "CI, 000 eq. 2"),
    "label_error": FactorDef("label_error", "relabel", NoOptions, 0.0, 0.0, 1.0, "LD, 000 eq. 3"),
}


def factor_def(name: str) -> FactorDef:
    """The factor called ``name``: a special one, or any registered image perturbation."""
    if name in _SPECIAL:
        return _SPECIAL[name]
    if name in PERTURBATIONS:
        p = PERTURBATIONS.get(name)
        low = p.min_level if p.min_level is not None else float("-inf")
        return FactorDef(name, "augment", augment_options(name), p.identity, low, float("inf"), p.unit)
    known = sorted([*_SPECIAL, *PERTURBATIONS])
    raise KeyError(f"unknown factor {name!r}; known: {', '.join(known)}")


def pick_sources(labels: np.ndarray, per_class: int, seed: int, num_classes: int) -> np.ndarray:
    """Indices of ``per_class`` clean images per class to perturb (without replacement when
    the class is large enough, else every image then a seeded top-up)."""
    rng = np.random.default_rng(seed)
    out = []
    for c in range(num_classes):
        idx = np.flatnonzero(labels == c)
        if per_class <= len(idx):
            out.append(rng.choice(idx, size=per_class, replace=False))
        else:
            out.append(np.concatenate([idx, rng.choice(idx, size=per_class - len(idx), replace=True)]))
    return np.concatenate(out)


def perturb_pool(
    train: ImageSet,
    name: str,
    level: float,
    per_class: int,
    seed: int,
    num_classes: int,
    options: dict | None = None,
    *,
    model: torch.nn.Module | None = None,
    chunk: int = 4096,
) -> ImageSet:
    """``per_class`` clean training images per class perturbed by ``name`` at ``level``
    (000 §2.2.1), stored as float16. ``options`` are the perturbation's own options
    (:func:`perturbation_options`); ``model`` is the reference model of perturbations
    that need one (FGSM)."""
    src = pick_sources(train.labels, per_class, seed, num_classes)
    p = PERTURBATIONS.get(name)
    images = apply_to_array(
        p, train.images[src], level, seed, options, model=model, labels=train.labels[src], chunk=chunk
    )
    return ImageSet(images, train.labels[src])


AS_TRAINED = "as_trained"  # key of compose()'s achieved levels measured on the composed set


def compose(
    base: ImageSet,
    levels: dict[str, float | None],
    pools: dict[str, ImageSet],
    seed: int,
    num_classes: int,
) -> tuple[ImageSet, dict]:
    """The training set of one trial, and the factor levels it actually has.

    ``levels`` maps factor name -> level (None: leave untouched); ``pools`` holds the
    built augment pool of each augment factor at its level. Stages run in the order of
    the module doc. Returns the composed set and the achieved level of every factor
    (class_imbalance as sampled, before the augment stage), plus under ``AS_TRAINED`` the
    sample-stage levels measured on the composed set (000 eq. 2 on its class counts).
    """
    achieved: dict = {}
    train = base
    ci = levels.get("class_imbalance")
    if ci is not None:
        train = base.subset(class_imbalance(base.labels, ci, seed, num_classes))
    if "class_imbalance" in levels:
        achieved["class_imbalance"] = imbalance(train.class_counts(num_classes))

    added = []
    for name, level in levels.items():
        fdef = factor_def(name)
        if fdef.stage == "augment":
            if level is not None or fdef.identity is not None:  # else NaN: "not applied"
                achieved[name] = float(level) if level is not None else float(fdef.identity)
            if not fdef.is_identity(level):
                added.append(pools[name])
    if added:
        train = concat([train, *added])

    ld = levels.get("label_error")
    if ld:
        noisy = label_error(train.labels, ld, seed, num_classes)
        achieved["label_error"] = float(np.mean(noisy != train.labels))
        train = ImageSet(train.images, noisy)
    elif "label_error" in levels:
        achieved["label_error"] = 0.0
    if "class_imbalance" in levels:
        # the CI the model trains at: augment copies (equal per class) pull it below the
        # sampled level (CI 0.4 + 1,000 copies per class -> 0.348); results.py writes it as
        # achieved_class_imbalance beside the nominal level, which stays what 000 regresses on
        achieved[AS_TRAINED] = {
            "class_imbalance": imbalance(train.class_counts(num_classes)),
            **({"label_error": achieved["label_error"]} if "label_error" in achieved else {}),
        }
    return train, achieved
