"""Training and evaluation speed of robust_ray's loop, against fair baselines and its floor.

Trains LeNet-5 for one epoch on MNIST at batch size 128 (Adam, lr 1e-3), every setup on the
same number of images, and prints images/s of the training steps:

  (a0) the old baseline, kept for its ratio: torchvision MNIST + DataLoader with a PIL
       Resize(32)/ToTensor per sample, num_workers=0, an NCHW 32x32 model;
  (a1) a fair DataLoader script: ToTensor only (LeNet-5 pads inside the model, as ours),
       the channels-last model ours trains, once per ``--workers`` count (default 0 and 1:
       on a shared two-core machine a loader process competes with the steps);
  (a2) a fair TensorDataset script: the whole set as one float tensor, a shuffling
       DataLoader over a TensorDataset, the channels-last model;
  (b)  ours: robust_ray.train.fit (whole set as one tensor, index-slice batches), the
       training steps of its epoch as timed by fit;
  (c)  floor: the same model and optimiser stepping on one batch already in place.

Runs are paired (issue 21 item 5): each repetition runs every setup once, in a rotated
order, and a ratio is the median over repetitions of (b) / (a_i) within a repetition,
so a burst of load from other processes hits both sides of a ratio, not one. The old
report's ratio (best of the repetitions per side, against (a0)) is printed next to it.
Then evaluation images/s over an MNIST-C-sized input (240,000 float16 images).

    python benchmarks/train_speed.py [--root DIR] [--device cpu|cuda] [--repeat N] [--quick]

``--root`` defaults to $ROBUST_RAY_DATA, else ../shared/datasets next to the repository.
``--threads`` defaults to 1, as a trial with ``resources.cpu: 1``. ``--quick`` trains on
the first 12,000 images and evaluates 48,000: the ratios in a minute or two.
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


def _epoch(model: torch.nn.Module, batches, device: torch.device, channels_last: bool) -> float:
    """Images/s of one epoch of Adam steps over ``batches``, timed from the first batch in
    hand (loader workers' start-up is a fixed cost, not throughput)."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    it = iter(batches)
    first = next(it)
    sync(device)
    t0 = time.perf_counter()
    n = 0
    for x, y in _chain(first, it):
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        if channels_last:
            x = layout(x)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        n += len(y)
    sync(device)
    return n / (time.perf_counter() - t0)


def _chain(first, rest):
    yield first
    yield from rest


def old_baseline(root: Path, device: torch.device, n: int) -> float:
    """(a0): the old report's baseline, unchanged but for the image count: PIL Resize(32) per
    sample, num_workers=0, NCHW 32x32 model."""
    from torchvision import datasets, transforms

    tf = transforms.Compose([transforms.Resize(32), transforms.ToTensor()])
    ds = torch.utils.data.Subset(datasets.MNIST(str(root), train=True, download=False, transform=tf), range(n))
    loader = torch.utils.data.DataLoader(ds, batch_size=BATCH, shuffle=True, num_workers=0,
                                         pin_memory=device.type == "cuda")  # fmt: skip
    seed_everything(0)
    return _epoch(build_model("lenet5", 1, 10, (32, 32)).to(device), loader, device, channels_last=False)


def dataloader_baseline(root: Path, device: torch.device, n: int, workers: int) -> float:
    """(a1): a fair per-sample DataLoader script: ToTensor only (the model pads to 32x32
    itself, as ours), loader processes overlapping the steps, channels-last model."""
    from torchvision import datasets, transforms

    ds = torch.utils.data.Subset(datasets.MNIST(str(root), train=True, download=False,
                                                transform=transforms.ToTensor()), range(n))  # fmt: skip
    loader = torch.utils.data.DataLoader(ds, batch_size=BATCH, shuffle=True, num_workers=workers,
                                         pin_memory=device.type == "cuda")  # fmt: skip
    seed_everything(0)
    return _epoch(prepare_model(build_model("lenet5", 1, 10, (28, 28)), device), loader, device, channels_last=True)


def tensor_baseline(train: data.ImageSet, device: torch.device, n: int) -> float:
    """(a2): the whole set as one float tensor, a shuffling DataLoader over a TensorDataset,
    channels-last model: what a careful hand-written script does."""
    x, y = data.to_float(train.images[:n]), torch.as_tensor(train.labels[:n])
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=BATCH, shuffle=True)
    seed_everything(0)
    return _epoch(prepare_model(build_model("lenet5", 1, 10, (28, 28)), device), loader, device, channels_last=True)


def ours(train: data.ImageSet, device: torch.device) -> tuple[float, float]:
    """(b): robust_ray's fit for one epoch; images/s of its training steps, and of the
    whole call (tensor upload, validation and training-fit evaluation included)."""
    seed_everything(0)
    model = build_model("lenet5", 1, 10, (28, 28))
    settings = TrainingSpec(max_epochs=1, batch_size=BATCH, device=device.type)
    t0 = time.perf_counter()
    r = fit(model, train, settings, 0, device)
    whole = time.perf_counter() - t0
    n_train = fit_size(train, settings)
    return n_train / r.history[0]["train_s"], n_train / whole


def fit_size(train: data.ImageSet, settings: TrainingSpec) -> int:
    """How many images fit trains on (the rest is its validation split)."""
    return len(train) - len(data.stratified_sample(train.labels, settings.val_fraction, 0))


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


def evaluation(test: data.ImageSet, device: torch.device, batch_size: int, tiles: int = 24) -> float:
    """Evaluation over ``tiles`` x the test set in float16 (24: MNIST-C's 240,000 images)."""
    images = np.tile(data.as_float16(test.images), (tiles, 1, 1, 1))
    labels = np.tile(test.labels, tiles)
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
    p.add_argument("--repeat", type=int, default=3, help="paired repetitions (every setup once each)")
    p.add_argument(
        "--workers", default="0,1", help="DataLoader workers of the fair per-sample baseline, one setup each"
    )
    p.add_argument("--limit", type=int, default=None, help="train on the first N images (default: all)")
    p.add_argument("--quick", action="store_true", help="--limit 12000 and 48,000 evaluation images")
    p.add_argument("--eval-batch-size", type=int, default=4096)
    p.add_argument("--threads", type=int, default=1,
                   help="torch intra-op threads (default 1, as a trial with resources.cpu: 1; 0: torch's default)")  # fmt: skip
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    limit = args.limit or (12000 if args.quick else None)
    workers = [int(w) for w in args.workers.split(",")]
    device = pick_device(args.device)
    mnist = data.load("mnist", args.root, download=False)
    train = mnist.train if limit is None else mnist.train.subset(np.arange(limit))
    n = fit_size(train, TrainingSpec(max_epochs=1, batch_size=BATCH))
    root = Path(args.root)
    setups = {
        "a0": lambda: old_baseline(root, device, n),
        **{f"a1w{w}": (lambda w=w: dataloader_baseline(root, device, n, w)) for w in workers},
        "a2": lambda: tensor_baseline(mnist.train, device, n),
        "b": lambda: ours(train, device),
        "c": lambda: floor(train, device, -(-n // BATCH)),
    }
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, {n} training images "
          f"per epoch, batch {BATCH}, {args.repeat} paired repetitions")  # fmt: skip
    runs: dict[str, list[float]] = {k: [] for k in setups}
    whole: list[float] = []
    order = list(setups)
    for i in range(args.repeat):
        for k in order[i % len(order) :] + order[: i % len(order)]:  # rotated: no setup always runs first
            r = setups[k]()
            if k == "b":
                r, w = r
                whole.append(w)
            runs[k].append(r)
        print("  run " + str(i + 1) + ": " + "  ".join(f"({k}) {runs[k][-1]:,.0f}" for k in setups) + " images/s")
    b = np.array(runs["b"])

    def paired(k: str) -> str:
        r = b / np.array(runs[k])
        return f"{np.median(r):.2f} (paired runs {r.min():.2f}-{r.max():.2f})"

    names = {
        "a0": "(a0) old baseline: DataLoader + PIL Resize, 0 workers, NCHW",
        **{f"a1w{w}": f"(a1) DataLoader + ToTensor, {w} worker(s), channels-last" for w in workers},
        "a2": "(a2) TensorDataset + DataLoader, channels-last",
        "b": "(b)  robust_ray fit, training steps",
        "c": "(c)  floor, one batch stepped in place",
    }
    for k, what in names.items():
        print(f"{what:60s}: {np.median(runs[k]):10,.0f} images/s (median)")
    print(f"     whole fit call (upload + validation + fit accuracy): {np.median(whole):,.0f} images/s")
    print(f"{'old ratio (b)/(a0), best of each side':52s}: {b.max() / max(runs['a0']):.2f}"
          f"   (old target >= {10 if device.type == 'cuda' else 2})")  # fmt: skip
    print(f"{'new ratio (b)/(a0), paired':52s}: {paired('a0')}")
    for w in workers:
        print(f"{f'new ratio (b)/(a1), fair DataLoader, {w} worker(s)':52s}: {paired(f'a1w{w}')}")
    print(f"{'new ratio (b)/(a2), TensorDataset loop':52s}: {paired('a2')}")
    print(f"{'(b)/(c), against the floor':52s}: {paired('c')}   (target >= 0.85 on CPU)")
    eval_batch = min(args.eval_batch_size, CPU_EVAL_BATCH) if device.type == "cpu" else args.eval_batch_size
    tiles = 4 if args.quick else 24
    e = evaluation(mnist.test, device, args.eval_batch_size, tiles)
    print(f"evaluation, {tiles * len(mnist.test):,} float16 images, batch {eval_batch}: {e:,.0f} images/s")


if __name__ == "__main__":
    main()
