"""Fused against unfused training (issue 19 item 1): K LeNet-5 models on mnist-5k, each on
its own training set and seed, trained one after another with ``train.fit`` and together
with ``fused.fit_fused``; models per minute of each and their ratio, measured in one run.

    python benchmarks/fused_speed.py [--k 4 8] [--epochs 1] [--device cpu|cuda] [--threads N]

On CPU a fused step is K convolutions batched by vmap: the arithmetic is the same, so the
gain can only come from fewer Python steps and launches, which a CPU barely pays; a GPU is
where launches dominate (``benchmarks/gpu.sh`` runs this there).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from robust_ray import data  # noqa: E402
from robust_ray.fused import fit_fused  # noqa: E402
from robust_ray.models import build_model  # noqa: E402
from robust_ray.seeding import seed_everything  # noqa: E402
from robust_ray.spec import TrainingSpec  # noqa: E402
from robust_ray.train import fit  # noqa: E402


def models(k: int, device):
    out = []
    for s in range(k):
        seed_everything(s)
        out.append(build_model("lenet5", 1, 10, (28, 28)).to(device))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--k", type=int, nargs="+", default=[4, 8])
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    device = torch.device(a.device)
    tr = data.load("mnist-5k").train
    st = TrainingSpec(max_epochs=a.epochs, patience=a.epochs, batch_size=128, device=a.device, amp=False)
    rng = np.random.default_rng(0)
    print(f"LeNet-5 on mnist-5k, {a.epochs} epoch(s), batch 128, {a.device}, {a.threads} thread(s)")
    for k in a.k:
        trains = [tr.subset(rng.permutation(len(tr))[: 4000 - 100 * i]) for i in range(k)]
        t0 = time.perf_counter()
        for i, m in enumerate(models(k, device)):
            fit(m, trains[i], st, i, device)
        unfused = time.perf_counter() - t0
        t0 = time.perf_counter()
        fit_fused(models(k, device), trains, st, list(range(k)), device)
        fused = time.perf_counter() - t0
        print(
            f"K = {k}: unfused {60 * k / unfused:.1f} models/min ({unfused:.1f} s), fused {60 * k / fused:.1f} models/min "
            f"({fused:.1f} s); fused / unfused = {unfused / fused:.2f}x"
        )


if __name__ == "__main__":
    main()
