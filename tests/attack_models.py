"""A LeNet-5 trained for a few seconds on mnist-5k, shared by the attack tests (one per
pytest process: the tests that need it build it once)."""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

STEPS = 80  # ~92-94 % test accuracy: robust enough for PGD to have something to break


@functools.lru_cache(maxsize=1)
def trained_lenet5(steps: int = STEPS):
    from robust_ray import data
    from robust_ray.data import to_float
    from robust_ray.models import build_model

    ds = data.load("mnist-5k")
    torch.manual_seed(0)
    model = build_model("lenet5", 1, 10, (28, 28))
    x, y = to_float(ds.train.images), torch.as_tensor(ds.train.labels)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    for _ in range(steps):
        idx = torch.randint(0, len(x), (128,), generator=gen)
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x[idx]), y[idx]).backward()
        opt.step()
    opt.zero_grad(set_to_none=True)
    return model.eval(), ds.test
