"""000 eq. (1): every perturbed image sits at exactly its target L2 distance after clipping,
measured on the bytes we store (float16)."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from robust_ray.perturb import LevelUnreachable, l2_distance, scale_to_l2
from robust_ray.perturb.noise import gaussian_l2


def digits(n: int, seed: int) -> torch.Tensor:
    """MNIST-like batches: mostly 0 background, saturated strokes, some grey edges."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 28, 28, generator=g)
    x = torch.where(x > 0.8, torch.ones_like(x), torch.where(x > 0.7, x, torch.zeros_like(x)))
    return x


@settings(max_examples=25, deadline=None)
@given(level=st.floats(0.05, 12.0), seed=st.integers(0, 2**31), n=st.integers(1, 64))
def test_gaussian_l2_hits_level_on_stored_float16(level, seed, n):
    x = digits(n, seed)
    y = gaussian_l2(x, level, seed)
    stored = y.half().float()
    err = (l2_distance(stored, x) - level).abs().max().item()
    assert err < 2e-3, err  # issue 4 asks < 0.01, the paper tolerates 0.125
    assert stored.min() >= 0 and stored.max() <= 1


def test_scale_to_l2_is_exact_before_rounding_and_per_image_levels():
    x = digits(200, 1)
    z = torch.randn_like(x)
    levels = torch.linspace(0.5, 12.0, 200)
    y = scale_to_l2(x, z, levels)
    assert torch.allclose(l2_distance(y, x).float(), levels, atol=1e-4)


def test_direction_is_kept_where_not_clipped():
    x = torch.full((1, 1, 4, 4), 0.5)
    z = torch.randn(1, 1, 4, 4)
    y = scale_to_l2(x, z, 0.1)  # small: nothing clips
    d = (y - x).flatten()
    cos = torch.nn.functional.cosine_similarity(d, z.flatten(), dim=0)
    assert cos > 0.9999


def test_level_zero_is_identity_and_seed_is_deterministic():
    x = digits(8, 2)
    assert torch.equal(gaussian_l2(x, 0.0, 5), x)
    assert torch.equal(gaussian_l2(x, 3.0, 5), gaussian_l2(x, 3.0, 5))
    assert not torch.equal(gaussian_l2(x, 3.0, 5), gaussian_l2(x, 3.0, 6))


def test_unreachable_level_is_an_error():
    x = torch.zeros(2, 1, 2, 2)  # headroom sqrt(4) = 2 at most, along positive directions
    z = torch.ones_like(x)
    with pytest.raises(LevelUnreachable, match="unreachable"):
        scale_to_l2(x, z, 2.5)
    np.testing.assert_allclose(l2_distance(scale_to_l2(x, z, 2.0), x).numpy(), 2.0, atol=1e-5)


def test_unreachable_level_error_survives_pickling():
    """It is raised inside Ray build tasks and re-raised on the driver."""
    import pickle

    from robust_ray.perturb.l2 import LevelUnreachable

    e = pickle.loads(pickle.dumps(LevelUnreachable(25.0, 17.25, 3)))
    assert (e.level, e.reachable, e.count) == (25.0, 17.25, 3) and "unreachable for 3 image(s)" in str(e)


# --- every level from one sort (issue 21 item 4) -------------------------------------------


def bisect_scales(x: np.ndarray, z: np.ndarray, levels: np.ndarray, iters: int = 200) -> np.ndarray:
    """An independent oracle, in float64: for each row and level the s with
    ||clip(x + s z) - x|| = level, by bisection on the (monotone) distance. [n, L]."""
    x, z = x[:, None, :].astype(np.float64), z[:, None, :].astype(np.float64)
    lo, hi = np.zeros((len(x), len(levels))), np.full((len(x), len(levels)), 1e6)
    for _ in range(iters):
        mid = (lo + hi) / 2
        d = np.linalg.norm(np.clip(x + mid[..., None] * z, 0, 1) - x, axis=-1)
        low = d < levels
        lo, hi = np.where(low, mid, lo), np.where(low, hi, mid)
    return (lo + hi) / 2


def test_all_levels_from_one_sort_equal_level_by_level_and_hit_each_level():
    from robust_ray.perturb import scale_to_l2_levels
    from robust_ray.suites import PAPER_L2_LEVELS

    x = digits(300, 3)
    z = torch.randn_like(x)
    together = list(scale_to_l2_levels(x, z, PAPER_L2_LEVELS, chunk=128))
    assert len(together) == len(PAPER_L2_LEVELS) == 24
    for level, y in zip(PAPER_L2_LEVELS, together):
        assert torch.equal(y, scale_to_l2(x, z, level)), level
        assert (l2_distance(y, x) - level).abs().max() < 1e-5
        assert y.min() >= 0 and y.max() <= 1


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(1, 9),
    pixels=st.integers(1, 60),
    frac_edge=st.floats(0.0, 0.9),
    frac_still=st.floats(0.0, 0.6),
    signs=st.booleans(),
    shares=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=8),
)
def test_multi_level_solve_matches_an_independent_root_finder(seed, n, pixels, frac_edge, frac_still, signs, shares):
    """Random images (pixels at the bounds, as in MNIST), Gaussian or sign (FGSM) directions
    with pixels that do not move, levels anywhere up to the farthest every image can reach."""
    from robust_ray.perturb import scale_to_l2_levels

    g = np.random.default_rng(seed)
    x = g.random((n, pixels)).astype(np.float32)
    x[g.random(x.shape) < frac_edge / 2] = 0.0
    x[g.random(x.shape) < frac_edge / 2] = 1.0
    z = g.standard_normal(x.shape).astype(np.float32)
    z = np.sign(z) if signs else z
    z[g.random(x.shape) < frac_still] = 0.0
    cap = np.sqrt((np.where(z > 0, 1 - x, x).astype(np.float64) ** 2 * (z != 0)).sum(1)).min()
    levels = [float(s * cap) * (1 - 1e-6) for s in shares]
    xt, zt = torch.from_numpy(x), torch.from_numpy(z)
    together = list(scale_to_l2_levels(xt, zt, levels))
    oracle = bisect_scales(x, z, np.array(levels))
    for j, (level, y) in enumerate(zip(levels, together)):
        assert torch.equal(y, scale_to_l2(xt, zt, level))
        assert np.allclose(l2_distance(y, xt).numpy(), level, rtol=1e-5, atol=1e-5)
        expect = np.clip(x + oracle[:, j : j + 1] * z, 0, 1)
        assert np.abs(l2_distance(y, torch.from_numpy(expect).float()).numpy()).max() < 1e-5


def test_an_unreachable_level_among_many_is_an_error_before_any_image():
    from robust_ray.perturb import scale_to_l2_levels

    x = torch.zeros(3, 1, 2, 2)
    z = torch.ones_like(x)
    z[1] = -1.0  # cannot move at all: headroom 0 towards 0
    with pytest.raises(LevelUnreachable) as e:
        next(scale_to_l2_levels(x, z, [0.0, 1.0, 2.5, 3.0]))
    assert (e.value.level, e.value.count) == (1.0, 1) and e.value.reachable == 0.0
    x[1] = 0.5
    with pytest.raises(LevelUnreachable) as e:
        next(scale_to_l2_levels(x, z, [0.0, 1.0, 2.5, 3.0]))
    assert (e.value.level, e.value.count) == (2.5, 3) and e.value.reachable == pytest.approx(1.0)
