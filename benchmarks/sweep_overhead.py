"""Issue 6 benchmark: what Ray costs a sweep, measured in one run against plain baselines.

(a) Per-trial overhead: N short fixed-work trials (mnist-5k, LeNet-5, one epoch) run as a
    Ray Tune sweep on a 1-CPU Ray (so trials run one after another, like the loop), versus
    the very same trial body (``execute_trial``) called N times in a plain Python loop with
    the datasets in local memory. Overhead per trial = (sweep - loop) / N.
(b) Dataset hand-off: a trial obtaining a 400 MB suite from the object store (``ray.get``,
    zero-copy) versus loading it from disk (``Suite.load``, np.load of .npy files; the page
    cache is warm since the files were just written, the best case for disk).

    python benchmarks/sweep_overhead.py [--trials 8]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import ray

os.environ.setdefault("ROBUST_RAY_CACHE", "off")

from robust_ray import data  # noqa: E402
from robust_ray.cache import build  # noqa: E402
from robust_ray.config import parse_spec  # noqa: E402
from robust_ray.data import ImageSet  # noqa: E402
from robust_ray.plan import make_plan  # noqa: E402
from robust_ray.runtime import Progress, connect, make_tuner, place  # noqa: E402
from robust_ray.storage import Storage  # noqa: E402
from robust_ray.suites import Suite  # noqa: E402
from robust_ray.trial import execute_trial  # noqa: E402


def overhead(n: int, out: Path) -> None:
    spec = parse_spec(
        {
            "name": "overhead",
            "architectures": ["lenet5"],
            "seeds": list(range(n)),  # n trials of identical work, one per seed
            "training": {"max_epochs": 1, "patience": 1},
            "design": {"type": "list", "factors": {"gaussian_l2": {"per_class": 50}}, "rows": [{"gaussian_l2": 2.0}]},
            "suites": {"mnist-test": {}},
        }
    )
    plan = make_plan(spec)
    base = data.load("mnist-5k")
    local = {"base": base} | {d: build(k, base) for d, k in plan.datasets.items()}

    t0 = time.perf_counter()
    for t in plan.trials:
        execute_trial(t.to_dict(), spec, local.__getitem__, lambda m: None)
    loop = time.perf_counter() - t0

    connect(None, num_cpus=1)
    refs = place(plan, base, spec, None, log=lambda *_: None)
    t0 = time.perf_counter()
    progress = Progress(n, "acc_mnist-test", lambda *_: None)
    make_tuner(spec, refs, Storage(str(out)), progress, grid=[t.to_dict() for t in plan.trials]).fit()
    sweep = time.perf_counter() - t0
    print(f"(a) {n} trials: plain loop {loop:.1f} s, Ray Tune sweep {sweep:.1f} s")
    print(f"    overhead per trial: {(sweep - loop) / n:.2f} s (target <= 1 s); sweep/loop = {sweep / loop:.2f}")


@ray.remote(num_cpus=1)
def _from_store(holder: list) -> float:
    t0 = time.perf_counter()
    suite = ray.get(holder[0])
    float(suite.data.images[::4096].astype(np.float32).sum())  # touch it
    return time.perf_counter() - t0


@ray.remote(num_cpus=1)
def _from_disk(folder: str) -> float:
    t0 = time.perf_counter()
    suite = Suite.load(Path(folder))
    float(suite.data.images[::4096].astype(np.float32).sum())
    return time.perf_counter() - t0


def handoff(folder: Path) -> None:
    n = 400 * 2**20 // (784 * 2)  # 400 MB of float16 28x28 images
    rng = np.random.default_rng(0)
    images = rng.random((n, 1, 28, 28), dtype=np.float32).astype(np.float16)
    suite = Suite(ImageSet(images, rng.integers(0, 10, n)), np.repeat(np.float32(1.0), n))
    suite.save(folder)
    ref = ray.put(suite)
    store = min(ray.get([_from_store.remote([ref]) for _ in range(3)]))
    disk = min(ray.get([_from_disk.remote(str(folder)) for _ in range(3)]))
    print(f"(b) {suite.nbytes / 2**20:.0f} MiB suite: object store {store * 1e3:.1f} ms, disk (warm cache) {disk * 1e3:.0f} ms")
    print(f"    object store is {disk / store:.0f}x faster (target >= 10x)")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=8)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        overhead(args.trials, Path(tmp) / "sweep")
        handoff(Path(tmp))
