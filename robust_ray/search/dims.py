"""The dimensions of a search: what a key of ``search.space`` names.

A key is a factor (``fgsm_l2``), a training setting (``training.lr``) or an option of the
search's one recipe (``training.recipe_options.eps``); trials.parquet has a column of the
same name for each. This grammar is parsed here only (:func:`split`); everything else asks
these functions. No planning here: the spec checks (:mod:`.checks`) need only this.
"""

from __future__ import annotations

from typing import Literal

from ..factors import factor_def
from ..perturb import PERTURBATIONS
from ..recipes import RECIPES
from ..spec import FactorSpec, SearchRange, SweepSpec, TrainingSpec

TRAINING = "training."
OPTIONS = TRAINING + "recipe_options."  # a search has one recipe (checks.py): its options

Kind = Literal["factor", "training", "option"]


def split(key: str) -> tuple[Kind, str]:
    """(what ``key`` names, its own name): ``("option", "eps")``, ``("training", "lr")``,
    ``("factor", "fgsm_l2")``."""
    if key.startswith(OPTIONS):
        return "option", key[len(OPTIONS) :]
    if key.startswith(TRAINING):
        return "training", key[len(TRAINING) :]
    return "factor", key


def training_column(setting: str) -> str:
    return TRAINING + setting


def option_column(option: str) -> str:
    return OPTIONS + option


def is_training(key: str) -> bool:
    """Training settings and recipe options: ``training.<x>`` columns in trials.parquet."""
    return split(key)[0] != "factor"


def is_option(key: str) -> bool:
    return split(key)[0] == "option"


def option_key(key: str) -> str:
    """``eps`` of ``training.recipe_options.eps``."""
    kind, name = split(key)
    assert kind == "option", key
    return name


def setting_key(key: str) -> str:
    """``lr`` of ``training.lr``."""
    kind, name = split(key)
    assert kind == "training", key
    return name


def recipe_of(spec: SweepSpec) -> str:
    return spec.recipe_list()[0][0]


def searched_factors(spec: SweepSpec) -> list[str]:
    return [n for n in spec.search.space if not is_training(n)]


def is_integer(key: str, recipe: str = "standard") -> bool:
    """Whole-number dimensions: int training settings and options of ``recipe``, integer
    perturbations (pixels)."""
    kind, name = split(key)
    if kind == "option":
        return RECIPES.get(recipe).options.model_fields[name].annotation is int
    if kind == "training":
        return TrainingSpec.model_fields[name].annotation is int
    fdef = factor_def(name)
    return fdef.stage == "augment" and PERTURBATIONS.get(name).integer


def factor_spec(r: SearchRange) -> FactorSpec:
    """The ``design.factors`` entry a searched factor stands for: its reference and options
    (typed already, by the search checks)."""
    fs = FactorSpec.model_validate({"reference": r.reference.model_dump(), **(r.model_extra or {})})
    fs._options = r.options
    return fs
