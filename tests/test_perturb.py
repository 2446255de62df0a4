"""Every registered image perturbation, checked against the contract of perturb/base.py:
same shape, float32, range [0, 1], deterministic for a seed, damage growing with level."""

from __future__ import annotations

import pytest
import torch

from robust_ray.data import to_float
from robust_ray.perturb import PERTURBATIONS
from robust_ray.perturb.corruptions import NAMES as CORRUPTIONS

# name -> (options, low level, high level, random?): one row per registered perturbation
CASES: dict[str, tuple[dict, float, float, bool]] = {
    "gaussian_l2": ({}, 1.0, 6.0, True),
    "fgsm_l2": ({}, 1.0, 6.0, False),
    "gaussian_var": ({}, 0.01, 0.2, True),
    "salt_pepper": ({}, 0.02, 0.2, True),
    "rotation": ({}, 10.0, 60.0, False),
    "few_pixel": ({}, 4, 64, True),
    "sp>gaussian": ({"first": 0.1}, 0.01, 0.2, True),
    "gaussian>sp": ({"first": 0.05}, 0.02, 0.2, True),
    "sp>rotation": ({"first": 0.1}, 10.0, 60.0, True),
    "rotation>sp": ({"first": 30.0}, 0.02, 0.2, True),
    "gaussian>rotation": ({"first": 0.05}, 10.0, 60.0, True),
    "rotation>gaussian": ({"first": 30.0}, 0.01, 0.2, True),
    **{
        f"corruption:{c}": (
            {},
            1,
            5,
            c
            not in {
                "defocus_blur",
                "zoom_blur",
                "brightness",
                "contrast",
                "pixelate",
                "jpeg_compression",
                "saturate",
                "gaussian_blur",
            },
        )
        for c in CORRUPTIONS
    },  # noqa: E501
}


def test_every_registered_perturbation_is_covered():
    assert set(PERTURBATIONS) == set(CASES)


@pytest.fixture(scope="module")
def images(mnist5k):
    return to_float(mnist5k.test.images[:48]), torch.as_tensor(mnist5k.test.labels[:48])


@pytest.fixture(scope="module")
def ctx(images, tiny_model):
    return {"model": tiny_model, "labels": images[1]}


def _run(name, x, level, seed, ctx):
    p = PERTURBATIONS.get(name)
    opts = CASES[name][0]
    extra = ctx if p.needs_model else {}
    return p(x, level, seed, opts, **extra)


@pytest.mark.parametrize("name", sorted(CASES))
def test_contract(name, images, ctx):
    opts, low, high, random = CASES[name]
    x = images[0][:16] if name.startswith("corruption:") else images[0]
    c = {"model": ctx["model"], "labels": ctx["labels"][: len(x)]}
    y_low = _run(name, x, low, 3, c)
    y_high = _run(name, x, high, 3, c)
    for y in (y_low, y_high):
        assert y.shape == x.shape and y.dtype == torch.float32
        assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0
    assert torch.equal(y_high, _run(name, x, high, 3, c)), "not deterministic for a fixed seed"
    if random:
        assert not torch.equal(y_high, _run(name, x, high, 4, c)), "the seed changes nothing"
    damage = lambda y: float((y - x).flatten(1).norm(dim=1).mean())  # noqa: E731
    assert damage(y_low) < damage(y_high), f"{name}: damage does not grow from level {low} to {high}"
    assert torch.equal(x, images[0][: len(x)]), "the input was modified in place"


@pytest.mark.parametrize("name", sorted(n for n in CASES if PERTURBATIONS.get(n).identity is not None))
def test_identity_level_changes_nothing(name, images, ctx):
    p = PERTURBATIONS.get(name)
    x = images[0][:8]
    c = {"model": ctx["model"], "labels": ctx["labels"][:8]} if p.needs_model else {}
    y = p(x, p.identity, 0, CASES[name][0], **c)
    assert torch.allclose(y, x, atol=1.5 / 255)  # corruptions round-trip through uint8
