"""Perturbations: image perturbations (registered by name), label and sampling perturbations."""

from . import noise  # noqa: F401  (registers its perturbations)
from .base import PERTURBATIONS, Perturbation, perturbation
from .l2 import LevelUnreachable, l2_distance, scale_to_l2
from .labels import label_error, label_error_rate
from .sampling import class_imbalance, imbalance

__all__ = [
    "PERTURBATIONS",
    "Perturbation",
    "perturbation",
    "LevelUnreachable",
    "l2_distance",
    "scale_to_l2",
    "label_error",
    "label_error_rate",
    "class_imbalance",
    "imbalance",
]
