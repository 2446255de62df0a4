"""Perturbations: image perturbations (registered by name), label and sampling perturbations.

Registered image perturbations (level; options written next to ``levels`` in a spec):

=====================  ===============================================  ==========================
name                   level                                            options
=====================  ===============================================  ==========================
gaussian_l2            exact L2 distance of Gaussian noise (000 §2.2.1)
fgsm_l2                exact L2 distance of FGSM (000 §2.2.1)           (reference model in ctx)
gaussian_var           variance of additive noise, imnoise (003)
salt_pepper            density d, imnoise 's&p' (003)
rotation               degrees, positive = clockwise (003)              interpolation
a>b                    two-factor, a then b; a, b in sp, gaussian,      first | second (the
                       rotation (003)                                   fixed stage's level)
few_pixel              n pixels changed (002 Algorithm 1)               value_range, side, mode,
                                                                        positions
corruption:<name>      severity 1-5 (004, Hendrycks & Dietterich)
=====================  ===============================================  ==========================
"""

from . import adversarial, composition, corruptions, geometric, noise, pixels  # noqa: F401  (register)
from .base import PERTURBATIONS, NoOptions, Perturbation, apply_to_array, perturbation
from .l2 import LevelUnreachable, l2_distance, scale_to_l2, scale_to_l2_levels
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
    "scale_to_l2_levels",
    "label_error",
    "label_error_rate",
    "class_imbalance",
    "imbalance",
]
