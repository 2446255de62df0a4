"""What ``run --extend`` saves (issue 17): the wall time of an extend that adds 2 levels to
the quickstart, against a fresh run of the extended spec, measured in one process run.

    python benchmarks/extend_speed.py [--quick] [--num-cpus N]

1. runs ``sweeps/quickstart.yaml`` into a temporary folder (not timed: the starting point);
2. times ``run --extend`` with one more level of each factor (gaussian_l2 8.0, label_error
   0.4: 2 new levels x the seeds);
3. times a fresh ``run`` of that extended spec into a new folder;
and prints both wall times and their ratio. Both timed runs start their own local Ray, as a
user's would, and both read the dataset cache the first run filled. ``--quick``: one seed
and one epoch, the ratio in about a minute.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def run(args: list[str]) -> float:
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "robust_ray", *args], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"robust-ray {' '.join(args)} failed ({r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="one seed, one epoch")
    p.add_argument("--num-cpus", type=int, default=2)
    a = p.parse_args()
    spec = yaml.safe_load((REPO / "sweeps" / "quickstart.yaml").read_text())
    if a.quick:
        spec["seeds"] = [0]
        spec["training"] = {**spec.get("training", {}), "max_epochs": 1}
    grown = yaml.safe_load(yaml.safe_dump(spec))
    grown["design"]["factors"]["gaussian_l2"]["levels"] += [8.0]
    grown["design"]["factors"]["label_error"]["levels"] += [0.4]
    cpus = ["--num-cpus", str(a.num_cpus)]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "base.yaml").write_text(yaml.safe_dump(spec))
        (tmp / "grown.yaml").write_text(yaml.safe_dump(grown))
        start = run(["run", str(tmp / "base.yaml"), "--output", str(tmp / "ext"), *cpus])
        extend = run(["run", str(tmp / "grown.yaml"), "--output", str(tmp / "ext"), "--extend", *cpus])
        fresh = run(["run", str(tmp / "grown.yaml"), "--output", str(tmp / "fresh"), *cpus])
    n_seeds = len(spec.get("seeds", [0]))
    print(f"quickstart ({'quick: 1 seed, 1 epoch' if a.quick else 'as shipped'}): first run {start:.1f} s")
    print(f"extend (+2 levels x {n_seeds} seed(s)): {extend:.1f} s; fresh run of the extended spec: {fresh:.1f} s")
    print(f"extend / fresh = {extend / fresh:.2f}")


if __name__ == "__main__":
    main()
