"""Speed of the white-box suites against their floor, on LeNet-5.

Prints images/s of

  (a) a plain forward pass (inference mode: what a stored suite costs per image);
  (b) one forward + backward pass to the input (one attack iteration's floor);
  (c) PGD-10 L∞ (robust_ray.attacks.pgd) at eps 0.001, 0.1 and 0.3: 10 fwd+bwd + 1 fwd per
      image that survives, fewer for images fooled early (they leave the batch); at 0.001
      almost none falls, so its ratio is the loop's own overhead;
  (d) AutoAttack-cheap L∞ at eps 0.3 (ART: APGD-CE + APGD-DLR, 20 iterations each),

and, for (c) and (d), the ratio of their time per image per iteration to (b): 1.0 means
the attack costs no more than the gradients it needs. The model is LeNet-5 trained for a
few seconds on mnist-5k (an untrained one is fooled at once and measures nothing); the
images are mnist-5k's test split.

    python benchmarks/eval_speed.py [--device cpu|cuda] [--quick] [--threads N] [--repeat N]

``--threads`` defaults to 1, as in a trial with ``resources.cpu: 1``. Each measurement
runs ``--repeat`` times (default 3; 1 with ``--quick``) and the best is kept.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from robust_ray import data  # noqa: E402
from robust_ray.attacks import autoattack, pgd  # noqa: E402
from robust_ray.data import to_float  # noqa: E402
from robust_ray.models import build_model  # noqa: E402
from robust_ray.train import pick_device  # noqa: E402

STEPS = 10
CHEAP_ITERS = 2 * 20  # APGD-CE + APGD-DLR, 20 iterations each (attacks.AUTOATTACK_VERSIONS)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def best_of(fn, repeat: int, device: torch.device) -> float:
    times = []
    for _ in range(repeat):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return min(times)


def trained_lenet(ds, device: torch.device, steps: int) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model("lenet5", 1, 10, (28, 28)).to(device)
    x, y = to_float(ds.train.images, device), torch.as_tensor(ds.train.labels, device=device)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    for _ in range(steps):
        idx = torch.randint(0, len(x), (128,), generator=gen).to(device)
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x[idx]), y[idx]).backward()
        opt.step()
    return model.eval().requires_grad_(False)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    ap.add_argument("--quick", action="store_true", help="fewer images and one repeat")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    repeat = args.repeat or (1 if args.quick else 3)
    ds = data.load("mnist-5k")
    model = trained_lenet(ds, device, 150 if args.quick else 400)
    n = 500 if args.quick else len(ds.test)
    n_aa = 200 if args.quick else 500
    images, labels = ds.test.images[:n], ds.test.labels[:n]
    x = to_float(images, device)
    y = torch.as_tensor(labels, device=device)
    bs = 512 if device.type == "cpu" else 4096

    def forward():
        with torch.inference_mode():
            for s in range(0, n, bs):
                model(x[s : s + bs]).argmax(1)

    def forward_backward():
        for s in range(0, n, bs):
            xb = x[s : s + bs].clone().requires_grad_(True)
            (g,) = torch.autograd.grad(F.cross_entropy(model(xb), y[s : s + bs], reduction="sum"), xb)

    with torch.inference_mode():
        clean = float((model(x).argmax(1) == y).float().mean())
    print(f"LeNet-5 on {device}, {args.threads} thread(s), clean accuracy {clean:.3f} on {n} mnist-5k test images")
    t_fwd = best_of(forward, repeat, device)
    t_fb = best_of(forward_backward, repeat, device)
    per_fb = t_fb / n
    print(f"  forward            {n / t_fwd:>10,.0f} images/s")
    print(f"  forward+backward   {n / t_fb:>10,.0f} images/s   ({t_fb / t_fwd:.2f}x a forward)")
    for eps in (0.001, 0.1, 0.3):
        res = {}

        def run_pgd():
            res["r"] = pgd(model, images, labels, [eps], steps=STEPS, seed=0)

        t = best_of(run_pgd, repeat, device)
        ratio = t / n / (STEPS + 1) / per_fb
        print(f"  PGD-{STEPS} eps={eps:<5g}    {n / t:>10,.0f} images/s   per iteration {ratio:.2f}x fwd+bwd "
              f"(robust accuracy {res['r'].accuracy[0]:.3f}; fooled images leave the batch early)")  # fmt: skip
    try:
        res = {}

        def run_aa():
            res["r"] = autoattack(model, images[:n_aa], labels[:n_aa], [0.3], version="cheap", seed=0)

        t = best_of(run_aa, 1, device)
        ratio = t / n_aa / CHEAP_ITERS / per_fb
        print(f"  AutoAttack-cheap   {n_aa / t:>10,.0f} images/s   per iteration {ratio:.2f}x fwd+bwd "
              f"(eps=0.3, {n_aa} images, robust accuracy {res['r'].accuracy[0]:.3f}; ART, numpy round trips)")  # fmt: skip
    except ImportError as e:
        print(f"  AutoAttack-cheap   skipped: {e}")


if __name__ == "__main__":
    main()
