"""Shared fixtures: one Ray per test session (2 CPUs), a private dataset cache, and the
full-MNIST folder when this machine has it (``../shared/datasets`` or ``$ROBUST_RAY_DATA``).

The suite runs on two pytest-xdist workers (``addopts = -n 2 --dist loadfile``): the fault
tests' drivers train one trial at a time and left one of CI's two cores idle. Each worker is
its own pytest session, so each starts its one Ray (num_cpus=2) the first time a test asks;
a file's tests stay on one worker, so module fixtures (a sweep run once, read by many tests)
run once. ``-n 0`` runs in this process, for a debugger or one quick test.

Tests are marked by what they need: ``full_mnist`` ones read the full MNIST files and run
only where they are present (CI has them), skipped with the reason elsewhere. ``slow`` only
says a test takes a minute or more (fault and resume tests on mnist-5k); it runs everywhere
(``-m "not slow"`` leaves them out for a quick loop).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "datasets"


def full_mnist_root() -> Path | None:
    for cand in (os.environ.get("ROBUST_RAY_DATA"), SHARED_DATA):
        if cand and (Path(cand) / "MNIST" / "raw" / "train-images-idx3-ubyte").exists():
            return Path(cand)
    return None


def pytest_configure(config):
    # Before Ray starts: workers inherit the environment, so they share this cache.
    os.environ.setdefault("ROBUST_RAY_CACHE", tempfile.mkdtemp(prefix="robust_ray_cache_"))
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")


def pytest_collection_modifyitems(config, items):
    # Files holding slow tests first: xdist (addopts -n 2 --dist loadfile) hands files out in
    # this order, so the minute-long fault tests start early instead of ending the run on one
    # worker while the other idles. Stable: within a file the order is the file's.
    slow_files = {item.path for item in items if "slow" in item.keywords}
    items.sort(key=lambda item: item.path not in slow_files)
    if full_mnist_root() is not None:
        return
    skip = pytest.mark.skip(reason="needs full MNIST (../shared/datasets or $ROBUST_RAY_DATA); runs in CI")
    for item in items:
        if "full_mnist" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def ray_session():
    """The one local Ray of the test session (num_cpus=2, as on CI machines)."""
    import ray

    if not ray.is_initialized():
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def mnist_root() -> Path:
    root = full_mnist_root()
    if root is None:
        pytest.skip("needs full MNIST (../shared/datasets or $ROBUST_RAY_DATA)")
    return root


@pytest.fixture(scope="session")
def mnist5k():
    from robust_ray import data

    return data.load("mnist-5k")


@pytest.fixture(scope="session")
def tiny_model(mnist5k):
    """A small CNN trained for a few seconds on mnist-5k: a reference model for FGSM tests."""
    import torch
    from torch import nn

    from robust_ray.data import to_float

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 12 * 12, 10)
    )  # fmt: skip
    x, y = to_float(mnist5k.train.images), torch.as_tensor(mnist5k.train.labels)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(60):
        idx = torch.randint(0, len(x), (128,), generator=torch.Generator().manual_seed(step))
        opt.zero_grad()
        nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
        opt.step()
    opt.zero_grad(set_to_none=True)
    return model.eval()
