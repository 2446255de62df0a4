"""Perturbations: image perturbations (registered by name), label and sampling perturbations."""

from . import adversarial, composition, corruptions, geometric, noise, pixels  # noqa: F401  (register)
from .base import PERTURBATIONS, NoOptions, Perturbation, apply_to_array, perturbation
from .l2 import LevelUnreachable, l2_distance, scale_to_l2
from .labels import label_error, label_error_rate
from .sampling import class_imbalance, imbalance

__all__ = [
    "PERTURBATIONS",
    "NoOptions",
    "Perturbation",
    "apply_to_array",
    "perturbation",
    "LevelUnreachable",
    "l2_distance",
    "scale_to_l2",
    "label_error",
    "label_error_rate",
    "class_imbalance",
    "imbalance",
]
