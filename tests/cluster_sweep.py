"""Run a small sweep on a 3-node Ray cluster on this machine (ray.cluster_utils.Cluster):
a head with no CPUs, two 1-CPU workers. With --kill, one worker node is removed once the
first trial has finished. With --gpu-fraction F, one worker with 4 CPUs and a logical GPU
instead, trials asking for F of it. Prints one JSON line with what happened. Used by test_cluster.py
in its own process, so the test session's Ray is left alone."""

import json
import sys
import threading
import time

import pandas as pd
import ray
from ray.cluster_utils import Cluster

from robust_ray.config import parse_spec
from robust_ray.runtime import Execution
from robust_ray.sweep import run_sweep

out, kill = sys.argv[1], "--kill" in sys.argv
max_failures = int(sys.argv[sys.argv.index("--max-failures") + 1]) if "--max-failures" in sys.argv else 3
# --gpu-fraction F: one worker with 4 CPUs and one (logical) GPU; trials ask for F of it
gpu = float(sys.argv[sys.argv.index("--gpu-fraction") + 1]) if "--gpu-fraction" in sys.argv else 0.0
cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
if gpu:
    workers = [cluster.add_node(num_cpus=4, num_gpus=1)]
else:
    workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
cluster.wait_for_nodes()

spec = parse_spec(
    {
        "name": "cluster",
        "architectures": ["lenet5"],
        "training": {"max_epochs": 2, "patience": 1},
        "design": {
            "type": "one_factor",
            "factors": {"gaussian_l2": {"levels": [2.0], "per_class": 20}, "label_error": {"levels": [0.1, 0.2]}},
        },
        "suites": {"mnist-test": {"n": 200}, "mnist-c": {"levels": [2.0], "n": 200}},
        "execution": {"max_failures": max_failures},
        "resources": {"cpu": 1, "gpu": gpu},
    }
)
lines, killed = [], []


def kill_when_busy() -> None:
    """Remove worker 0 while a trial runs on it: a trial actor started there after this was
    called (not a finished trial's, still shutting down) and ALIVE for 0.3 s (its ~5 s of
    PENDING_CREATION are imports; it then trains for ~1 s). A kill between two trials would
    lose nothing and test nothing."""
    node, armed_ms = workers[0].node_id, time.time() * 1000
    deadline = time.time() + 120
    while time.time() < deadline:
        now_ms = time.time() * 1000
        if any(a["State"] == "ALIVE" and a["Address"]["NodeID"] == node and armed_ms < a["StartTime"] < now_ms - 300
               for a in ray._private.state.actors().values()):  # fmt: skip
            break
        time.sleep(0.05)
    killed.append(time.time())
    cluster.remove_node(workers[0])


def log(line: str) -> None:
    lines.append(line)
    if kill and not killed and "1 done" in line:
        killed.append(0.0)  # armed: the thread records the real time
        threading.Thread(target=kill_when_busy).start()


run_sweep(spec, Execution(output=out, address=cluster.address, log=log))
trials = pd.read_parquet(f"{out}/trials.parquet")
ran = trials.dropna(subset=["started_at", "wall_s"])  # a lost trial has neither
start = ran["started_at"].map(lambda t: t.timestamp()).to_numpy()
end = start + ran["wall_s"].to_numpy()
# the most trials running at once: at each start, how many had started and not yet ended
peak = int(max((((start <= t) & (end > t)).sum() for t in start), default=0))
report = {"status": trials["status"].tolist(), "error": trials["error"].dropna().tolist(), "killed": bool(killed) and killed[-1] > 0,
          "peak": peak}  # fmt: skip
print(json.dumps({**report, "log": lines}), flush=True)
ray.shutdown()
cluster.shutdown()
