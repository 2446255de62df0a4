"""Each perturbation does exactly what its paper defines."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize, stats

from robust_ray.data import to_float
from robust_ray.perturb import PERTURBATIONS, LevelUnreachable, l2_distance, scale_to_l2
from robust_ray.perturb.adversarial import loss_gradient_sign
from robust_ray.seeding import derive_seed

# --- exact L2 (000 eq. 1) -----------------------------------------------------------------


def _brentq_scale(x: np.ndarray, z: np.ndarray, level: float) -> float:
    dist = lambda s: np.linalg.norm(np.clip(x + s * z, 0, 1) - x) - level  # noqa: E731
    hi = 1.0
    while dist(hi) < 0:
        hi *= 2
    return optimize.brentq(dist, 0.0, hi, xtol=1e-12)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    frac_edge=st.floats(0.0, 0.9),
    frac_zero_dir=st.floats(0.0, 0.5),
    share=st.floats(0.01, 0.95),
)
def test_scale_to_l2_matches_a_bracketing_root_finder(seed, frac_edge, frac_zero_dir, share):
    g = np.random.default_rng(seed)
    x = g.random((6, 50)).astype(np.float32)
    x[g.random(x.shape) < frac_edge / 2] = 0.0  # pixels at the bounds, as in MNIST
    x[g.random(x.shape) < frac_edge / 2] = 1.0
    z = g.standard_normal(x.shape).astype(np.float32)
    z[g.random(x.shape) < frac_zero_dir] = 0.0
    cap = np.sqrt((np.where(z > 0, 1 - x, x) ** 2 * (z != 0)).sum(1))
    level = float(share * cap.min())
    if level < 1e-3:
        return
    y = scale_to_l2(torch.from_numpy(x), torch.from_numpy(z), level)
    d = l2_distance(y, torch.from_numpy(x)).numpy()
    assert np.allclose(d, level, rtol=2e-5, atol=1e-6)
    for i in range(len(x)):
        expect = np.clip(x[i] + _brentq_scale(x[i].astype(np.float64), z[i].astype(np.float64), level) * z[i], 0, 1)
        assert np.allclose(y[i].numpy(), expect, atol=1e-4)


def test_unreachable_level_is_an_error_with_the_reachable_distance():
    x = torch.zeros(3, 10)
    z = torch.ones(3, 10)
    z[1, 5:] = -1.0  # these pixels cannot move: headroom 0 towards 0
    with pytest.raises(LevelUnreachable) as e:
        scale_to_l2(x, z, 3.0)
    assert e.value.count == 1 and e.value.reachable == pytest.approx(math.sqrt(5), rel=1e-5)


@pytest.mark.parametrize("level", [0.5, 6.0, 12.0])
def test_gaussian_l2_float16_storage_within_paper_tolerance(mnist5k, level):
    x = to_float(mnist5k.test.images)
    y = PERTURBATIONS.get("gaussian_l2")(x, level, 1).half().float()
    err = (l2_distance(y, x) - level).abs().max()
    assert float(err) < 0.01  # 000 tolerates 0.125 (1/4 of the 0.5 spacing)


# --- MATLAB imnoise semantics (003) -----------------------------------------------------------


def test_salt_and_pepper_density():
    x = torch.full((40, 1, 50, 50), 0.5)
    d = 0.2
    y = PERTURBATIONS.get("salt_pepper")(x, d, 0)
    n = y.numel()
    for value in (0.0, 1.0):
        k = int((y == value).sum())
        assert stats.binomtest(k, n, d / 2).pvalue > 1e-3
    assert bool(((y == 0) | (y == 1) | (y == 0.5)).all())


def test_gaussian_var_is_additive_noise_of_that_variance():
    x = torch.full((100, 1, 50, 50), 0.5)
    v = 0.004  # sd 0.063: clipping at 0 and 1 is 8 sd away
    y = PERTURBATIONS.get("gaussian_var")(x, v, 0)
    noise = (y - x).flatten().double().numpy()
    assert abs(noise.mean()) < 5 * math.sqrt(v / noise.size)
    assert noise.var() == pytest.approx(v, rel=0.01)
    assert float(PERTURBATIONS.get("gaussian_var")(x, 10.0, 0).max()) == 1.0  # then clipped


def test_rotation_positive_is_clockwise():
    x = torch.zeros(1, 1, 9, 9)
    x[0, 0, 0, 4] = 1.0  # top centre
    rot = PERTURBATIONS.get("rotation")
    assert rot(x, 90, 0)[0, 0, 4, 8] == 1.0  # clockwise: top -> right (003: RR90)
    assert rot(x, -90, 0)[0, 0, 4, 0] == 1.0  # counter-clockwise: top -> left (RL90)


# --- few-pixel changes (002 Algorithm 1) ----------------------------------------------------


@pytest.mark.parametrize("positions", ["batch", "image"])
@pytest.mark.parametrize("side", [1.0, 0.5])
def test_few_pixel_changes_n_pixels_in_the_centred_square(positions, side):
    x = torch.full((64, 1, 28, 28), 0.5)
    n = 16
    y = PERTURBATIONS.get("few_pixel")(x, n, 0, {"side": side, "positions": positions, "value_range": 0.4})
    changed = (y != x).flatten(1)
    assert bool((changed.sum(1) <= n).all()) and float(changed.sum(1).float().mean()) > n - 1
    p = round(side * 28)
    inside = torch.zeros(28, 28, dtype=torch.bool)
    inside[(28 - p) // 2 : (28 - p) // 2 + p, (28 - p) // 2 : (28 - p) // 2 + p] = True
    assert not bool((changed & ~inside.flatten()).any())
    values = y[y != x]
    assert float(values.max()) <= round(0.4 * 255) / 255 + 1e-6
    assert torch.allclose(values * 255, (values * 255).round(), atol=1e-4)  # 8-bit values
    same_positions = bool((changed == changed[0]).all())
    assert same_positions == (positions == "batch")


def test_few_pixel_shift_stays_within_half_the_range():
    x = torch.full((32, 1, 28, 28), 0.5)
    y = PERTURBATIONS.get("few_pixel")(x, 64, 1, {"mode": "shift", "value_range": 20 / 255})
    assert float((y - x).abs().max()) <= 10 / 255 + 1e-6


# --- two-factor compositions (003) ------------------------------------------------------------


def test_two_factor_is_the_two_stages_in_order(mnist5k):
    x = to_float(mnist5k.test.images[:32])
    sp, ga = PERTURBATIONS.get("salt_pepper"), PERTURBATIONS.get("gaussian_var")
    seed = 5
    manual = ga(sp(x, 0.1, derive_seed(seed, "sp", 0)), 0.05, derive_seed(seed, "gaussian", 1))
    y = PERTURBATIONS.get("sp>gaussian")(x, 0.05, seed, {"first": 0.1})
    assert torch.equal(y, manual)
    assert torch.equal(PERTURBATIONS.get("sp>gaussian")(x, 0.1, seed, {"second": 0.05}), manual)


def test_two_factor_order_matters(mnist5k):
    x = to_float(mnist5k.test.images[:32])
    sp_then_ga = PERTURBATIONS.get("sp>gaussian")(x, 0.05, 0, {"first": 0.2})
    ga_then_sp = PERTURBATIONS.get("gaussian>sp")(x, 0.2, 0, {"first": 0.05})
    assert not torch.equal(sp_then_ga, ga_then_sp)
    # salt & pepper last leaves its exact 0s and 1s; noise after it blurs most of the 1s away
    ones = lambda y: float((y == 1).float().mean())  # noqa: E731
    assert ones(ga_then_sp) > ones(sp_then_ga) + 0.03
    rot = PERTURBATIONS.get("rotation")
    sp_then_rot = PERTURBATIONS.get("sp>rotation")(x, 45.0, 0, {"first": 0.2})
    assert bool((sp_then_rot[:, :, 0, 0] == 0).all())  # rotation last: corners filled with 0
    assert torch.equal(rot(PERTURBATIONS.get("salt_pepper")(x, 0.2, derive_seed(0, "sp", 0)), 45.0, 0), sp_then_rot)


# --- FGSM (000 §2.2.1) ----------------------------------------------------------------------


def _float64_gradient(model, x, labels):
    m64 = copy.deepcopy(model).double().eval()
    x64 = x.double().requires_grad_(True)
    F.cross_entropy(m64(x64), labels, reduction="sum").backward()
    return x64.grad


def test_fgsm_moves_along_the_loss_gradient_sign_to_the_exact_distance(mnist5k, tiny_model):
    x = to_float(mnist5k.test.images[:64])
    labels = torch.as_tensor(mnist5k.test.labels[:64])
    y = PERTURBATIONS.get("fgsm_l2")(x, 3.0, 0, model=tiny_model, labels=labels)
    assert float((l2_distance(y, x) - 3.0).abs().max()) < 1e-4
    g = _float64_gradient(tiny_model, x, labels)
    moved = y != x
    assert bool((torch.sign(y - x)[moved] == torch.sign(g)[moved]).all())
    big = g.abs() > 1e-9 * g.abs().flatten(1).max(1).values.view(-1, 1, 1, 1)
    assert float(moved[big].float().mean()) > 0.4  # most pixels move (the rest are clipped)


def _stable_float64_gradient(model, x, labels):
    """The cross-entropy gradient in float64 with dJ/dlogit_y = -(sum of the other p_j)
    instead of p_y - 1, which cancels to 0 once 1 - p_y is below float64's epsilon."""
    m64 = copy.deepcopy(model).double().eval()
    x64 = x.double().requires_grad_(True)
    logits = m64(x64)
    true = F.one_hot(labels, logits.shape[1]).bool()
    p = torch.softmax(logits.detach(), 1).masked_fill(true, 0.0)
    v = p - true.double() * p.sum(1, keepdim=True)
    (g,) = torch.autograd.grad(logits, x64, grad_outputs=v)
    return g


def test_fgsm_has_a_direction_when_the_softmax_saturates(mnist5k, tiny_model):
    """Scaled up, the model is so confident that float32 cross-entropy gradients are exactly
    zero for some images (logit margin above ~104); the direction must still be the sign of
    the loss gradient."""
    x = to_float(mnist5k.test.images[:256])
    labels = torch.as_tensor(mnist5k.test.labels[:256])
    confident = copy.deepcopy(tiny_model)
    with torch.no_grad():
        confident[-1].weight.mul_(16.0)
        confident[-1].bias.mul_(16.0)
    xg = x.clone().requires_grad_(True)
    F.cross_entropy(confident(xg), labels, reduction="none").sum().backward()
    dead = (xg.grad.flatten(1) == 0).all(1)
    assert int(dead.sum()) >= 3, "the scaled model should saturate float32 softmax for some images"
    z = loss_gradient_sign(confident, x, labels)
    assert bool((z.flatten(1).abs().sum(1) > 0).all())
    g = _stable_float64_gradient(confident, x[dead], labels[dead])
    clear = g.abs() > 1e-4 * g.abs().flatten(1).max(1).values.view(-1, 1, 1, 1)
    assert bool((z[dead][clear] == torch.sign(g[clear])).all())
    y = PERTURBATIONS.get("fgsm_l2")(x, 2.0, 0, model=confident, labels=labels)
    assert float((l2_distance(y, x) - 2.0).abs().max()) < 1e-4


def test_fgsm_leaves_the_model_as_it_was(mnist5k, tiny_model):
    tiny_model.train()
    before = [p.clone() for p in tiny_model.parameters()]
    x = to_float(mnist5k.test.images[:8])
    PERTURBATIONS.get("fgsm_l2")(x, 1.0, 0, model=tiny_model, labels=torch.as_tensor(mnist5k.test.labels[:8]))
    assert tiny_model.training and all(torch.equal(a, b) for a, b in zip(before, tiny_model.parameters()))
    assert all(p.grad is None for p in tiny_model.parameters())
    tiny_model.eval()


@pytest.mark.parametrize("name", sorted(n for n in PERTURBATIONS if PERTURBATIONS.get(n).direction is not None))
def test_shared_direction_gives_the_same_images_as_level_by_level(name, mnist5k, tiny_model):
    from robust_ray.perturb.base import apply_levels, apply_to_array

    p = PERTURBATIONS.get(name)
    images, labels = mnist5k.test.images[:100], mnist5k.test.labels[:100]
    ctx = {"model": tiny_model, "labels": labels} if p.needs_model else {}
    together = apply_levels(p, images, [0.0, 1.0, 5.0], 3, chunk=64, **ctx)
    for level, got in zip([0.0, 1.0, 5.0], together):
        assert np.array_equal(got, apply_to_array(p, images, level, 3, chunk=64, **ctx))
