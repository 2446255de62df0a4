"""What running the tests on two pytest-xdist workers saves (issue 12: the default suite under
ten minutes on 2 cores): the wall time of one test selection run in a single process
(``-n 0``) against the same selection on ``-n 2`` (the suite's addopts), in one script run.

    python benchmarks/suite_workers.py [--quick] [-n N] [pytest args ...]

Default selection: the ``slow`` tests (kill/resume, signals, cluster faults: subprocess
drivers that train one trial at a time, the part of the suite that left a core idle).
``--quick``: the signal and resume files only, both runs in about four minutes. Any other
arguments go to pytest as the selection (``tests/test_signals.py -k SIGINT``). Each run starts
from its own empty dataset cache, so neither reads datasets the other built.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def pytest(selection: list[str], workers: int, env: dict) -> tuple[float, str]:
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", str(workers), *selection]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    summary = (r.stdout.strip().splitlines() or ["(no output)"])[-1]
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-2000:]}")
    return wall, summary


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="the signal and resume files only")
    p.add_argument("-n", type=int, default=2, help="workers of the parallel run (default 2, as addopts)")
    a, rest = p.parse_known_args()
    selection = rest or (["tests/test_signals.py", "tests/test_resume.py"] if a.quick else ["-m", "slow"])
    with tempfile.TemporaryDirectory(prefix="suite_workers_") as tmp:
        # each run its own empty dataset cache: neither reads what the other built
        serial, s_sum = pytest(selection, 0, {**os.environ, "ROBUST_RAY_CACHE": f"{tmp}/serial"})
        parallel, p_sum = pytest(selection, a.n, {**os.environ, "ROBUST_RAY_CACHE": f"{tmp}/parallel"})
    print(f"selection: {' '.join(selection)}")
    print(f"-n 0 (one process): {serial:.1f} s  [{s_sum}]")
    print(f"-n {a.n} (xdist, --dist loadfile): {parallel:.1f} s  [{p_sum}]")
    print(f"-n {a.n} / -n 0 = {parallel / serial:.2f}")


if __name__ == "__main__":
    main()
