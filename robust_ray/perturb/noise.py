"""Random-noise perturbations of the input images."""

from __future__ import annotations

import torch

from .base import generator, perturbation
from .l2 import scale_to_l2


@perturbation("gaussian_l2", unit="L2 distance")
def gaussian_l2(x: torch.Tensor, level: float, seed: int) -> torch.Tensor:
    """Zero-mean Gaussian noise scaled so that every clipped image is at L2 distance
    ``level`` from ``x`` (000 §2.2.1 and eq. 1; the exact solve replaces the paper's
    pick-the-closest-draw search)."""
    z = torch.randn(x.shape, generator=generator(seed, x.device), device=x.device, dtype=x.dtype)
    return scale_to_l2(x, z, level)
