"""Geometric perturbations of the input images."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict

from .base import perturbation


class RotationOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    interpolation: Literal["nearest", "bilinear"] = "nearest"  # MATLAB imrotate's default


@perturbation(
    "rotation", unit="degrees, positive = clockwise", min_level=-180.0, max_level=180.0, options=RotationOptions
)
def rotation(x: torch.Tensor, level: float, seed: int, interpolation: str = "nearest") -> torch.Tensor:
    """Rotate every image by ``level`` degrees about its centre, same size, corners filled
    with 0: the RO/RL/RR perturbation of 003 ("negative degrees mean we rotate images
    counterclockwise, and positive degrees mean ... clockwise"; RL30 = -30, RR30 = +30).
    torchvision counts counter-clockwise as positive, hence the sign flip. Deterministic:
    ``seed`` is unused."""
    # imported here, not at the top: torchvision (and torch._dynamo with it) costs every
    # process that imports robust_ray.perturb ~1.7 s and ~170 MiB (issue 21 item 2)
    import torchvision.transforms.v2.functional as TF

    mode = TF.InterpolationMode(interpolation)
    return TF.rotate(x, -float(level), interpolation=mode, fill=[0.0] * x.shape[1]).clamp_(0.0, 1.0)
