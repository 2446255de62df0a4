"""Scale a perturbation direction so the clipped image lands at an exact L2 distance.

000 eq. (1) measures a perturbed image by d = ||x' - x||_2 after clipping to [0, 1]. For a
direction z, x'(s) = clip(x + s z) and the squared distance is

    f(u) = sum_i min(u z_i^2, h_i^2),  u = s^2,

with h_i the headroom from x_i to the bound that z_i points at. f is concave and piecewise
linear in u, so Newton's method started at the lower bound u0 = d^2 / ||z||^2 (where f(u) <=
u ||z||^2) never overshoots and reaches the exact root of f(u) = d^2 in a few vectorised
passes. The paper picks the closest of many random draws and tolerates 1/4 of the level
spacing (000 §2.2.1); this hits the level to float32 precision.
"""

from __future__ import annotations

import torch


class LevelUnreachable(ValueError):
    """The asked L2 distance exceeds what clipping to [0, 1] allows for some image."""

    def __init__(self, level: float, reachable: float, count: int):
        self.level, self.reachable, self.count = level, reachable, count
        super().__init__(
            f"L2 level {level:g} is unreachable for {count} image(s): clipping to [0, 1] "
            f"caps their distance at {reachable:.3f} along this direction"
        )


def scale_to_l2(
    x: torch.Tensor, z: torch.Tensor, level: float | torch.Tensor, rtol: float = 1e-6, max_iter: int = 64
) -> torch.Tensor:
    """clip(x + s z, 0, 1) with s >= 0 chosen per image so that its L2 distance to x is ``level``.

    ``x`` is float32 in [0, 1], ``z`` a direction of the same shape (Gaussian draw, gradient
    sign, ...), ``level`` a scalar or one value per image. Raises :class:`LevelUnreachable`
    when an image cannot move that far. Implements 000 eq. (1) exactly (see module doc).
    """
    n = x.shape[0]
    xf, zf = x.reshape(n, -1), z.reshape(n, -1)
    d2 = torch.as_tensor(level, dtype=xf.dtype, device=xf.device).expand(n) ** 2
    z2 = zf * zf
    h2 = torch.where(zf > 0, 1.0 - xf, xf).square_()
    h2 = torch.where(zf == 0, torch.zeros_like(h2), h2)  # no direction, no movement

    cap = h2.sum(1)
    short = d2 > cap * (1 + 1e-6)
    if bool(short.any()):
        worst = int(torch.argmax(torch.where(short, d2 - cap, torch.zeros_like(cap))))
        raise LevelUnreachable(float(d2[worst].sqrt()), float(cap[worst].sqrt()), int(short.sum()))

    z2sum = z2.sum(1)
    u = torch.where(z2sum > 0, d2 / z2sum.clamp_min(1e-30), torch.zeros_like(d2))
    active = torch.nonzero(d2 > 0).squeeze(1)
    for _ in range(max_iter):
        if active.numel() == 0:
            break
        ua, z2a, h2a = u[active, None], z2[active], h2[active]
        moved = ua * z2a
        free = moved < h2a  # pixels not yet clipped: the slope of f at u
        f = torch.minimum(moved, h2a).sum(1)
        slope = (z2a * free).sum(1)
        resid = d2[active] - f
        done = (resid <= rtol * d2[active]) | (slope <= 0)
        step = torch.where(done, torch.zeros_like(resid), resid / slope.clamp_min(1e-30))
        u[active] = ua.squeeze(1) + step
        active = active[~done]
    s = u.sqrt().view(n, *([1] * (x.dim() - 1)))
    return (x + s * z).clamp_(0.0, 1.0)


def l2_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image L2 distance in [0, 1] pixel space (000 eq. 1), computed in float64."""
    return (a.double() - b.double()).flatten(1).norm(dim=1)
