"""The exact-L2 solve as it was before issue 21 item 4, kept only so that
``perturb_speed.py`` can print the old figure next to the new one: Newton's method on
f(u) = sum_i min(u z_i^2, h_i^2), run level by level (each level re-derives z^2, the
headroom and its Newton passes). Not used by robust_ray."""

from __future__ import annotations

import torch

from robust_ray.perturb.l2 import LevelUnreachable


def _solve(
    x: torch.Tensor, z: torch.Tensor, d2: torch.Tensor, rtol: float, max_iter: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """u = s^2 for every row of ``x``/``z`` ([n, P]), and a mask of rows whose level is
    out of reach (f stops growing below d^2: every pixel that can move is clipped)."""
    n = x.shape[0]
    z2 = z * z
    h2 = torch.where(z > 0, 1.0 - x, x).square_()
    u = torch.zeros(n, dtype=x.dtype, device=x.device)
    stuck = torch.zeros(n, dtype=torch.bool, device=x.device)
    rows = torch.arange(n, device=x.device)
    buf = torch.empty_like(z2)
    free = torch.empty(z2.shape, dtype=torch.bool, device=x.device)
    for _ in range(max_iter):
        ua, d2a = u[rows], d2[rows]
        torch.mul(z2, ua[:, None], out=buf)
        torch.lt(buf, h2, out=free)  # pixels still moving: f'(u+) sums their z^2
        f = torch.minimum(buf, h2, out=buf).sum(1)
        slope = torch.mul(z2, free, out=buf).sum(1)
        resid = d2a - f
        ok = resid <= rtol * d2a
        flat = (slope <= 0) & ~ok
        stuck[rows[flat]] = True
        done = ok | flat
        u[rows] = torch.where(done, ua, ua + resid / slope.clamp_min(1e-30))
        if bool(done.all()):
            break
        keep = ~done
        if 2 * int(keep.sum()) < len(rows):  # compact once most rows have converged
            rows, z2, h2 = rows[keep], z2[keep], h2[keep]
            buf, free = buf[: len(rows)], free[: len(rows)]
    return u, stuck


def scale_to_l2(
    x: torch.Tensor,
    z: torch.Tensor,
    level: float | torch.Tensor,
    rtol: float = 1e-6,
    max_iter: int = 64,
    chunk: int = 512,
) -> torch.Tensor:
    """clip(x + s z, 0, 1) with s >= 0 chosen per image so that its L2 distance to x is ``level``.

    ``x`` is float32 in [0, 1], ``z`` a direction of the same shape (Gaussian draw, gradient
    sign, ...), ``level`` a scalar or one value per image. Raises :class:`LevelUnreachable`
    when an image cannot move that far. Implements 000 eq. (1) exactly (see module doc).
    """
    n = x.shape[0]
    xf, zf = x.reshape(n, -1), z.reshape(n, -1)
    d2 = torch.as_tensor(level, dtype=xf.dtype, device=xf.device).expand(n).square()
    out = torch.empty_like(xf)
    for s in range(0, n, chunk):
        xc, zc, d2c = xf[s : s + chunk], zf[s : s + chunk], d2[s : s + chunk]
        u, stuck = _solve(xc, zc, d2c, rtol, max_iter)
        y = torch.addcmul(xc, zc, u.sqrt_()[:, None], out=out[s : s + chunk]).clamp_(0.0, 1.0)
        if bool(stuck.any()):
            reach = (y[stuck] - xc[stuck]).norm(dim=1)
            worst = int(torch.argmax(d2c[stuck].sqrt() - reach))
            raise LevelUnreachable(float(d2c[stuck][worst].sqrt()), float(reach[worst]), int(stuck.sum()))
    return out.view_as(x)
