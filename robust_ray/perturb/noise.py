"""Random-noise perturbations of the input images."""

from __future__ import annotations

import math

import torch

from .base import Shape, generator, perturbation
from .l2 import scale_to_l2


def _l2_limit(level: float, options, shape: Shape | None) -> str | None:
    # The farthest any image can get: every pixel moves all the way across [0, 1]. The
    # headroom of real images along a given draw is smaller; building the data checks it.
    if shape is not None and level > math.sqrt(math.prod(shape)):
        return (
            f"L2 level {level:g} is beyond what a {'x'.join(map(str, shape))} image in [0, 1] "
            f"can reach (at most {math.sqrt(math.prod(shape)):.1f})"
        )
    return None


def gaussian_direction(x: torch.Tensor, seed: int) -> torch.Tensor:
    return torch.randn(x.shape, generator=generator(seed, x.device), device=x.device, dtype=x.dtype)


@perturbation("gaussian_l2", unit="L2 distance", limits=_l2_limit, direction=gaussian_direction)
def gaussian_l2(x: torch.Tensor, level: float, seed: int) -> torch.Tensor:
    """Zero-mean Gaussian noise scaled so that every clipped image is at L2 distance
    ``level`` from ``x`` (000 §2.2.1 and eq. 1; the exact solve replaces the paper's
    pick-the-closest-draw search)."""
    return scale_to_l2(x, gaussian_direction(x, seed), level)


@perturbation("gaussian_var", unit="Gaussian noise variance on [0, 1]")
def gaussian_var(x: torch.Tensor, level: float, seed: int) -> torch.Tensor:
    """Additive zero-mean Gaussian noise of variance ``level``, then clipped to [0, 1]:
    MATLAB ``imnoise(I, 'gaussian', 0, level)``, the GA perturbation of 003 (levels 0.1,
    0.15, 0.2 there)."""
    if level == 0:
        return x.clone()
    z = torch.randn(x.shape, generator=generator(seed, x.device), device=x.device, dtype=x.dtype)
    return torch.add(x, z, alpha=math.sqrt(level)).clamp_(0.0, 1.0)


@perturbation("salt_pepper", unit="salt & pepper noise density", max_level=1.0)
def salt_pepper(x: torch.Tensor, level: float, seed: int) -> torch.Tensor:
    """Salt & pepper noise of density ``level``: MATLAB ``imnoise(I, 'salt & pepper', d)``,
    the SP perturbation of 003. Each pixel (each channel value) draws u ~ U[0, 1): u < d/2
    becomes 0, d/2 <= u < d becomes 1, so about d of the pixels change, half to each bound."""
    u = torch.rand(x.shape, generator=generator(seed, x.device), device=x.device, dtype=x.dtype)
    salt = (u >= level / 2) & (u < level)
    return torch.where(u < level / 2, torch.zeros_like(x), torch.where(salt, torch.ones_like(x), x))
