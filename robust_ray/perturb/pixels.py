"""Few-pixel changes (Zhang & Cai, 002)."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field

from .base import Shape, generator, perturbation


class FewPixelOptions(BaseModel):
    """R and P of 002 Algorithm 1 (the level is n, the number of pixels changed)."""

    model_config = ConfigDict(extra="forbid")
    value_range: float = Field(
        1.0, gt=0, le=1, description="R: width of the interval new values come from, as a fraction of [0, 1] (Pi's r)"
    )
    side: float = Field(
        1.0,
        gt=0,
        le=1,
        description="P: side of the centred square pixels are picked in, as a fraction of the image side",
    )
    mode: Literal["set", "shift"] = Field(
        "set",
        description="set: new value uniform on {0, 1/255, ..., R} (Algorithm 1); shift: old value +- R/2, clipped (002 §6.1.2)",
    )
    positions: Literal["batch", "image"] = Field(
        "batch",
        description="batch: one position list shared by the whole batch, as in Algorithm 1; image: drawn per image",
    )


def area_side(side: float, h: int, w: int) -> tuple[int, int]:
    """Height and width of the centred position square P for an h x w image."""
    return max(1, round(side * h)), max(1, round(side * w))


def pixel_index_terms(n: int, options: FewPixelOptions, shape: Shape) -> dict[str, float]:
    """p, r, a of the Pixel-index Pi = w / (p r a) (002 §5, eq. 7) for n changed pixels."""
    _, h, w = shape
    ph, pw = area_side(options.side, h, w)
    k = int(options.value_range * 255)
    return {"p": n / (h * w), "r": k / 255, "a": ph * pw / (h * w)}


def _limits(level: float, options: FewPixelOptions, shape: Shape | None) -> str | None:
    if shape is None:
        return None
    ph, pw = area_side(options.side, shape[1], shape[2])
    if level > ph * pw:
        return f"few_pixel: {level:g} distinct pixels do not fit in the {ph}x{pw} position area (side={options.side:g})"
    return None


@perturbation("few_pixel", unit="pixels changed", integer=True, options=FewPixelOptions, limits=_limits)
def few_pixel(
    x: torch.Tensor,
    level: float,
    seed: int,
    value_range: float = 1.0,
    side: float = 1.0,
    mode: str = "set",
    positions: str = "batch",
) -> torch.Tensor:
    """Change ``level`` = n pixels of every image (002 Algorithm 1). Positions are n distinct
    pixels of the centred square P (one list for the batch, as the algorithm draws it once,
    or one per image); every channel of a chosen pixel gets a new 8-bit value: uniform on
    {0, ..., R} in ``set`` mode, the old value plus a uniform step in {-R/2, ..., R/2}
    (clipped) in ``shift`` mode. A new value may happen to equal the old one, as in the
    paper."""
    n = int(level)
    big_n, c, h, w = x.shape
    if n == 0:
        return x.clone()
    g = generator(seed, x.device)
    ph, pw = area_side(side, h, w)
    if positions == "batch":
        idx = torch.randperm(ph * pw, generator=g, device=x.device)[:n].expand(big_n, n)
    else:
        idx = torch.rand(big_n, ph * pw, generator=g, device=x.device).argsort(1)[:, :n]
    flat = ((h - ph) // 2 + idx // pw) * w + (w - pw) // 2 + idx % pw
    flat = flat[:, None, :].expand(big_n, c, n)
    out = x.reshape(big_n, c, h * w).clone()
    k = int(value_range * 255)
    if mode == "set":
        vals = torch.randint(0, k + 1, (big_n, c, n), generator=g, device=x.device).to(x.dtype) / 255
    else:
        step = torch.randint(-(k // 2), k // 2 + 1, (big_n, c, n), generator=g, device=x.device).to(x.dtype) / 255
        vals = (out.gather(2, flat) + step).clamp_(0.0, 1.0)
    return out.scatter_(2, flat, vals).view_as(x)
