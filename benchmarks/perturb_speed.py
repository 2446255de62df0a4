"""How fast are MNIST-C and MNIST-A built (000 §2.3: 24 L2 levels x the 10,000 test images)?

Prints images/s and a ratio against a baseline measured in the same run on the same data:

- mnist-c (exact-L2 Gaussian): the floor is plain, unclipped Gaussian noise on the same
  tensors (``x + randn``, 24 times over the test set); nothing that draws the noise can beat
  it. Target: ratio >= 1/5 (a sort per image reaches only ~1/10-1/30).
- mnist-a (exact-L2 FGSM): the baseline is one forward+backward of the reference model
  over the same 240,000 images. Target: ratio >= 1/2.

Two numbers per suite: the perturbation on float32 tensors alone, and the whole suite build
(uint8 -> float32, perturb, store float16), which is what a sweep pays. Memory: the peak
resident set of this process and the stored suite size.

    PYTHONPATH=$PWD python benchmarks/perturb_speed.py [--data-root DIR] [--n 10000]
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from robust_ray import data
from robust_ray.models import build_model
from robust_ray.perturb import PERTURBATIONS
from robust_ray.perturb.base import generator
from robust_ray.suites import PAPER_L2_LEVELS, build_suite, suite_def


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn, repeat: int = 1) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def reference_model(train: data.ImageSet, steps: int) -> torch.nn.Module:
    """LeNet-5 trained briefly on the training split (the speed of FGSM does not depend on
    how well the model is trained, only on its size)."""
    torch.manual_seed(0)
    model = build_model("lenet5", 1, 10, (28, 28))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = data.to_float(train.images), torch.as_tensor(train.labels)
    for step in range(steps):
        idx = torch.randint(0, len(x), (128,), generator=torch.Generator().manual_seed(step))
        opt.zero_grad()
        F.cross_entropy(model(x[idx]), y[idx]).backward()
        opt.step()
    return model.eval()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    default_root = os.environ.get("ROBUST_RAY_DATA") or str(Path(__file__).resolve().parents[2] / "shared" / "datasets")
    ap.add_argument("--data-root", default=default_root)
    ap.add_argument("--n", type=int, default=None, help="test images (default: all 10,000)")
    ap.add_argument("--train-steps", type=int, default=300)
    ap.add_argument("--repeat", type=int, default=1, help="best of this many runs for the timings")
    ap.add_argument("--level-by-level", action="store_true", help="also time FGSM recomputing the gradient per level")
    args = ap.parse_args()

    ds = data.load("mnist", args.data_root, download=False)
    test = ds.test if args.n is None else ds.test.subset(np.arange(args.n))
    levels = PAPER_L2_LEVELS
    total = len(test) * len(levels)
    x = data.to_float(test.images)
    labels = torch.as_tensor(test.labels)
    print(f"MNIST test: {len(test)} images x {len(levels)} levels = {total:,} images; torch threads {torch.get_num_threads()}")
    print(f"{'what':52s} {'seconds':>8s} {'images/s':>11s} {'ratio':>6s}")

    def row(what: str, seconds: float, base: float | None = None) -> None:
        ratio = f"{base / seconds:6.3f}" if base else ""
        print(f"{what:52s} {seconds:8.3f} {total / seconds:11,.0f} {ratio}")

    # --- mnist-c -------------------------------------------------------------------------
    def floor():
        for i, _ in enumerate(levels):
            x + torch.randn(x.shape, generator=generator(i))

    gauss = PERTURBATIONS.get("gaussian_l2")

    def perturb_only():
        for i, lv in enumerate(levels):
            gauss(x, lv, i)

    t_floor = timed(floor, args.repeat)
    row("floor: x + randn (unclipped), same tensors", t_floor)
    row("gaussian_l2 exact, float32 tensors", timed(perturb_only, args.repeat), t_floor)
    suite = None

    def build_c():
        nonlocal suite
        suite = build_suite(suite_def("mnist-c"), test, levels, None, 0)

    row("mnist-c build (uint8 in, float16 stored)", timed(build_c, args.repeat), t_floor)
    print(f"  mnist-c stored: {suite.nbytes / 2**20:.0f} MiB; peak RSS so far {peak_rss_mib():.0f} MiB")
    suite = None  # free it before the next build

    # --- mnist-a -------------------------------------------------------------------------
    model = reference_model(ds.train, args.train_steps)

    def fwd_bwd():
        for _ in levels:
            for s in range(0, len(x), 1024):
                xb = x[s : s + 1024].clone().requires_grad_(True)
                F.cross_entropy(model(xb), labels[s : s + 1024]).backward()

    fgsm = PERTURBATIONS.get("fgsm_l2")

    def fgsm_level_by_level():
        for lv in levels:
            fgsm(x, lv, 0, model=model, labels=labels)

    t_base = timed(fwd_bwd, args.repeat)
    row("baseline: reference model forward+backward", t_base)
    if args.level_by_level:
        row("fgsm_l2 exact, level by level (a gradient each)", timed(fgsm_level_by_level, 1), t_base)

    def build_a():
        nonlocal suite
        suite = build_suite(suite_def("mnist-a"), test, levels, None, 0, model=model)

    row("mnist-a build (one gradient, 24 levels)", timed(build_a, args.repeat), t_base)
    print(f"  mnist-a stored: {suite.nbytes / 2**20:.0f} MiB; peak RSS {peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
