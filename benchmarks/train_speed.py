"""Training and evaluation speed of robust_ray's loop, against its baseline and its floor.

Trains LeNet-5 for one epoch on full MNIST at batch size 128 (Adam, lr 1e-3) three ways,
in one run, and prints images/s for each:

  (a) baseline: torchvision MNIST + DataLoader + Resize(32)/ToTensor, the conventional script;
  (b) ours:     robust_ray.train.fit (whole set as one tensor on the device, index-slice
                batches, AMP/channels-last on GPU): training steps of the epoch, timed by fit;
  (c) floor:    the same model and optimiser stepping on one batch already on the device.

Targets: on CPU (b) >= 2x (a) and (b) >= 0.85x (c); on a GPU (b) >= 10x (a).
Then evaluation images/s over an MNIST-C-sized input (240,000 float16 images), as the
trial evaluates a suite.

    python benchmarks/train_speed.py [--root DIR] [--device cpu|cuda] [--repeat N]

``--root`` defaults to $ROBUST_RAY_DATA, else ../shared/datasets next to the repository.
Each measurement runs ``--repeat`` times (default 3) and the best is kept. ``--threads``
defaults to 1, as in a trial with ``resources.cpu: 1``: on a machine shared with other
processes, two intra-op threads on two cores spin against them and make every
measurement several times slower and noisier (the per-sample baseline most of all).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from robust_ray import data  # noqa: E402
from robust_ray.config import TrainingSpec  # noqa: E402
from robust_ray.models import build_model  # noqa: E402
from robust_ray.seeding import seed_everything  # noqa: E402
from robust_ray.train import (  # noqa: E402
    CPU_EVAL_BATCH,
    autocast,
    correct_counts,
    fit,
    layout,
    make_optimizer,
    pick_device,
    prepare_model,
)  # noqa: E402

BATCH = 128


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def baseline(root: Path, device: torch.device, workers: int) -> float:
    """(a): the conventional per-sample pipeline, one epoch."""
    from torchvision import datasets, transforms

    tf = transforms.Compose([transforms.Resize(32), transforms.ToTensor()])
    ds = datasets.MNIST(str(root), train=True, download=False, transform=tf)
    loader = torch.utils.data.DataLoader(
        ds, batch_size=BATCH, shuffle=True, num_workers=workers, pin_memory=device.type == "cuda"
    )
    seed_everything(0)
    model = build_model("lenet5", 1, 10, (32, 32)).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    sync(device)
    t0 = time.perf_counter()
    n = 0
    for x, y in loader:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        n += len(y)
    sync(device)
    return n / (time.perf_counter() - t0)


def ours(train: data.ImageSet, device: torch.device) -> tuple[float, float, int]:
    """(b): robust_ray's fit for one epoch; images/s of its training steps, and of the
    whole call (tensor upload, validation and training-fit evaluation included)."""
    seed_everything(0)
    model = build_model("lenet5", 1, 10, (28, 28))
    settings = TrainingSpec(max_epochs=1, batch_size=BATCH, device=device.type)
    t0 = time.perf_counter()
    r = fit(model, train, settings, 0, device)
    whole = time.perf_counter() - t0
    n_train = len(train) - int(round(settings.val_fraction * len(train)))
    steps = -(-n_train // BATCH)
    return n_train / r.history[0]["train_s"], n_train / whole, steps


def floor(train: data.ImageSet, device: torch.device, steps: int) -> float:
    """(c): the same model and optimiser stepping on one batch already on the device."""
    seed_everything(0)
    model = prepare_model(build_model("lenet5", 1, 10, (28, 28)), device)
    opt = make_optimizer(model, TrainingSpec())  # as fit's: Adam, lr 1e-3
    x = layout(data.to_float(train.images[:BATCH], device))
    y = torch.as_tensor(train.labels[:BATCH], device=device)
    amp = device.type == "cuda"
    model.train()

    def step():
        with autocast(device, amp):
            loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(10):  # warm-up: allocator, cuDNN autotune
        step()
    sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return steps * BATCH / (time.perf_counter() - t0)


def evaluation(test: data.ImageSet, device: torch.device, batch_size: int) -> float:
    """Evaluation over 240,000 float16 images (MNIST-C's size: 10,000 x 24 levels)."""
    images = np.tile(data.as_float16(test.images), (24, 1, 1, 1))
    labels = np.tile(test.labels, 24)
    seed_everything(0)
    model = prepare_model(build_model("lenet5", 1, 10, (28, 28)), device)
    correct_counts(model, images[:batch_size], labels[:batch_size], device, batch_size, amp=True)  # warm-up
    sync(device)
    t0 = time.perf_counter()
    correct_counts(model, images, labels, device, batch_size, amp=True)
    sync(device)
    return len(labels) / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_root = os.environ.get("ROBUST_RAY_DATA") or str(REPO.parent / "shared" / "datasets")
    p.add_argument("--root", default=default_root, help="folder holding MNIST/raw (default: %(default)s)")
    p.add_argument("--device", default="auto")
    p.add_argument("--repeat", type=int, default=3, help="runs of each measurement; the best is kept")
    p.add_argument("--workers", type=int, default=0, help="DataLoader workers of the baseline")
    p.add_argument("--eval-batch-size", type=int, default=4096)
    p.add_argument("--threads", type=int, default=1,
                   help="torch intra-op threads (default 1, as a trial with resources.cpu: 1; 0: torch's default)")  # fmt: skip
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    mnist = data.load("mnist", args.root, download=False)
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{len(mnist.train)} training images, batch {BATCH}, best of {args.repeat}")  # fmt: skip

    a, b, b_whole, c, e = [], [], [], [], []
    for i in range(args.repeat):
        a.append(baseline(Path(args.root), device, args.workers))
        b_steps, whole, steps = ours(mnist.train, device)
        b.append(b_steps)
        b_whole.append(whole)
        c.append(floor(mnist.train, device, steps))
        e.append(evaluation(mnist.test, device, args.eval_batch_size))
        print(f"  run {i + 1}: (a) {a[-1]:,.0f}  (b) {b[-1]:,.0f} [whole fit {whole:,.0f}]  "
              f"(c) {c[-1]:,.0f}  eval {e[-1]:,.0f} images/s")  # fmt: skip
    med_b, med_c = float(np.median(b)), float(np.median(c))
    a, b, b_whole, c, e = (max(v) for v in (a, b, b_whole, c, e))
    print(f"(a) baseline, DataLoader + Resize/ToTensor : {a:12,.0f} images/s")
    print(f"(b) robust_ray fit, training steps          : {b:12,.0f} images/s   "
          f"(whole fit call, upload + validation + fit accuracy: {b_whole:,.0f})")
    print(f"(c) floor, one batch stepped in place       : {c:12,.0f} images/s")
    print(f"(b)/(a) = {b / a:.2f}   (target >= {10 if device.type == 'cuda' else 2})")
    print(f"(b)/(c) = {b / c:.2f}   (target >= 0.85 on CPU; medians {med_b / med_c:.2f})")
    eval_batch = min(args.eval_batch_size, CPU_EVAL_BATCH) if device.type == "cpu" else args.eval_batch_size
    print(f"evaluation, 240,000 float16 images, batch {eval_batch}: {e:,.0f} images/s")


if __name__ == "__main__":
    main()
