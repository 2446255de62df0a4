"""Shared fixtures: one Ray per test session (2 CPUs), a private dataset cache, and the
full-MNIST folder when this machine has it (``../shared/datasets`` or ``$ROBUST_RAY_DATA``).

Tests marked ``slow`` or ``full_mnist`` run only where full MNIST is present (CI has it);
elsewhere they are skipped with the reason.
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
    if full_mnist_root() is not None:
        return
    skip = pytest.mark.skip(reason="needs full MNIST (../shared/datasets or $ROBUST_RAY_DATA); runs in CI")
    for item in items:
        if "slow" in item.keywords or "full_mnist" in item.keywords:
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
