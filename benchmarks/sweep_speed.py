"""Trials per minute of a 24-trial LeNet-5 sweep on mnist-5k (issue 19 item 3): a plain
PyTorch loop, robust-ray unfused, and robust-ray fused (K = 4, 8, 24), printed as ratios to
the plain loop, all measured in this one run.

    python benchmarks/sweep_speed.py [--trials 24] [--k 4 8 24] [--epochs 1] [--cpus 2]

The sweep: label_error at 0 and n - 1 levels spaced evenly below 0.9 (one_factor), 1 seed, evaluated on the
clean test split. The plain loop trains and evaluates the same 24 training sets in this
process with ``train.fit`` (threads = ``--cpus``), no Ray: the floor a sweep tool adds to.
Each robust-ray run starts its own local Ray (its start-up is part of a sweep's cost) and
uses a fresh dataset cache.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("RAY_worker_niceness", "0")  # Ray workers at our priority, as the plain loop

import torch  # noqa: E402

from robust_ray import data  # noqa: E402
from robust_ray.config import parse_spec  # noqa: E402
from robust_ray.factors import compose  # noqa: E402
from robust_ray.models import build_model  # noqa: E402
from robust_ray.runtime import Execution  # noqa: E402
from robust_ray.seeding import seed_everything  # noqa: E402
from robust_ray.sweep import run_sweep  # noqa: E402
from robust_ray.train import accuracy, fit  # noqa: E402


def spec_of(n: int, epochs: int, fuse: int, gpu: float = 0) -> dict:
    levels = [round(0.9 * (i + 1) / n, 4) for i in range(n - 1)]  # + the clean trial: n trials, all < 0.9
    return {"name": f"speed-{fuse}", "architectures": ["lenet5"], "seeds": [0], "resources": {"cpu": 1, "gpu": gpu},
            "training": {"max_epochs": epochs, "patience": epochs, "batch_size": 128},
            "design": {"type": "one_factor", "factors": {"label_error": {"levels": levels}}},
            "suites": {"mnist-test": {}}, "execution": {"fuse": fuse}}  # fmt: skip


def plain(spec: dict, threads: int) -> float:
    s = parse_spec(spec)
    device = torch.device("cuda" if s.resources.gpu else "cpu")
    base = data.load("mnist-5k")
    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    for lv in [0.0, *s.design.factors["label_error"].levels]:
        seed_everything(0)
        train, _ = compose(base.train, {"label_error": lv}, {}, 0, base.num_classes)
        model = build_model("lenet5", 1, 10, (28, 28))
        fit(model, train, s.training, 0, device)
        accuracy(model, base.test.images, base.test.labels, device)
    return time.perf_counter() - t0


def swept(spec: dict, cpus: int) -> float:
    import ray

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["ROBUST_RAY_CACHE"] = str(Path(tmp) / "cache")
        t0 = time.perf_counter()
        ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
        try:
            run_sweep(parse_spec(spec), Execution(output=str(Path(tmp) / "out"), log=lambda *_: None))
        finally:
            ray.shutdown()
        return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=24)
    p.add_argument("--k", type=int, nargs="+", default=[4, 8, 24])
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--cpus", type=int, default=2)
    p.add_argument("--gpu", type=float, nargs="+", default=[0.0],
                   help="resources.gpu per trial, one unfused run each (e.g. 0.25 1: four trials per card "
                        "against one); the fused runs use the first")  # fmt: skip
    a = p.parse_args()
    n = a.trials
    base = plain(spec_of(n, a.epochs, 1, a.gpu[0]), a.cpus)
    rows = [("plain PyTorch loop", base)]
    rows += [(f"robust-ray unfused gpu={g:g}" if g else "robust-ray unfused", swept(spec_of(n, a.epochs, 1, g), a.cpus))
             for g in a.gpu]  # fmt: skip
    rows += [(f"robust-ray fused K={k}", swept(spec_of(n, a.epochs, k, a.gpu[0]), a.cpus)) for k in a.k]
    print(f"{n} LeNet-5 trials on mnist-5k, {a.epochs} epoch(s), {a.cpus} CPUs, gpu per trial {a.gpu}")
    for name, secs in rows:
        print(f"  {name:<30} {60 * n / secs:7.1f} trials/min ({secs:6.1f} s)  {base / secs:.2f}x the plain loop")


if __name__ == "__main__":
    main()
