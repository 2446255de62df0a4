"""The quickstart end to end against a plain script doing the same work with the same
parallelism (issue 21: goal <= 1.2x), and the sweep's phase table, measured in one run.

Three fresh processes per repetition, in a rotated order (paired: a burst of load from other
processes hits a repetition, not a side), each timed by wall clock from this parent, so
every side pays its own imports:

- ``robust-ray run SPEC`` exactly as the README runs it (``--num-cpus 2``), writing results;
- plain: a script that imports, loads the base dataset, builds the same training sets and
  suites in its process, and runs the same trial body (``execute_trial``) in a pool of
  ``--cpus`` spawned processes, threads pinned as in a trial. No Ray, no result files: the
  floor any sweep tool adds to;
- phases: the sweep's steps timed inside one process (imports, base dataset, ``ray.init``,
  placing the datasets, ``Tuner.fit``, ``ray.shutdown``), with the trials' own time summed
  from their results, so the table shows where the gap lies.

The ratio is the median over repetitions of (robust-ray / plain) within a repetition.
``RAY_worker_niceness=0``: Ray's workers run at the parent's priority, as the plain pool's.

    python benchmarks/quickstart_speed.py [--spec sweeps/quickstart.yaml] [--repeat 2] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "RAY_worker_niceness": "0", "ROBUST_RAY_CACHE": "off", "PYTHONPATH": str(ROOT / "benchmarks")}


def child(kind: str, spec_path: str, smoke: bool, cpus: int, out: str) -> None:
    """Runs in a fresh process: prints one JSON line of phase seconds."""
    t: dict[str, float] = {}
    t0 = time.perf_counter()
    import sweep_overhead as so

    from robust_ray import data
    from robust_ray.loader import load_spec
    from robust_ray.plan import make_plan

    spec = load_spec(spec_path, smoke=smoke)
    plan = make_plan(spec)
    t["imports"] = time.perf_counter() - t0
    if kind == "plain":
        t |= so.plain_of(spec, plan, cpus)
    else:
        import ray

        from robust_ray.runtime import connect, place

        t["ray.init"] = so.seconds(lambda: connect(None, num_cpus=cpus))
        base: list = []
        t["base dataset"] = so.seconds(lambda: base.append(data.load(spec.dataset.name)))
        refs: dict = {}
        t["place datasets"] = so.seconds(
            lambda: refs.update(place(plan, base[0], spec, None, log=lambda *_: None, in_driver=True))
        )
        grid: list = []
        t["Tuner.fit"] = so.seconds(lambda: grid.append(so.make_tuner(spec, plan, refs, Path(out)).fit()))
        own = sum(r.metrics.get("time_total_s", 0.0) for r in grid[0])
        t["  trials' own time / cpus"] = own / cpus
        t["shutdown"] = so.seconds(ray.shutdown)
    print(json.dumps(t))


def timed(cmd: list[str]) -> tuple[float, dict]:
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=ENV, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode:
        sys.exit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "{}"
    return wall, (json.loads(last) if last.startswith("{") else {})


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--spec", default="sweeps/quickstart.yaml")
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--cpus", type=int, default=2)
    p.add_argument("--smoke", action="store_true", help="the spec's smoke variant (seconds, for a check)")
    p.add_argument("--child", choices=["plain", "phases"], help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        return child(a.child, a.spec, a.smoke, a.cpus, a.out)
    me = [sys.executable, str(Path(__file__).resolve())]
    common = ["--spec", a.spec, "--cpus", str(a.cpus)] + (["--smoke"] if a.smoke else [])
    cli = str(Path(sys.executable).with_name("robust-ray"))
    ratios, walls, phases = [], {"robust-ray run": [], "plain": [], "phases": []}, []
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(a.repeat):
            sides = {
                "robust-ray run": [cli, "run", a.spec, "--num-cpus", str(a.cpus), "--output", f"{tmp}/rr{rep}"]
                + (["--smoke"] if a.smoke else []),
                "plain": me + ["--child", "plain"] + common,
                "phases": me + ["--child", "phases", "--out", f"{tmp}/ph{rep}"] + common,
            }
            names = list(sides)
            names = names[rep % 3 :] + names[: rep % 3]
            got = {n: timed(sides[n]) for n in names}
            for n, (w, _) in got.items():
                walls[n].append(w)
            phases.append(got["phases"][1] | {"(process wall)": got["phases"][0]})
            ratios.append(got["robust-ray run"][0] / got["plain"][0])
            print(f"  repetition {rep + 1}: " + ", ".join(f"{n} {w:.1f} s" for n, (w, _) in got.items()))
    print(f"{a.spec}{' (smoke)' if a.smoke else ''}, {a.cpus} CPUs, {a.repeat} paired repetitions")
    print(f"  robust-ray run {statistics.median(walls['robust-ray run']):.1f} s, plain script "
          f"{statistics.median(walls['plain']):.1f} s: robust-ray / plain = {statistics.median(ratios):.2f} "
          f"(per repetition {', '.join(f'{r:.2f}' for r in ratios)}; goal <= 1.2)")  # fmt: skip
    print("  phases of the sweep in one process (median over repetitions, s):")
    for k in phases[0]:
        print(f"    {k:<28} {statistics.median(ph[k] for ph in phases):6.1f}")


if __name__ == "__main__":
    main()
