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
