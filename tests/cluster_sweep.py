"""Run a small sweep on a 3-node Ray cluster on this machine (ray.cluster_utils.Cluster):
a head with no CPUs, two 1-CPU workers. With --kill, one worker node is removed once the
first trial has finished. Prints one JSON line with what happened. Used by test_cluster.py
in its own process, so the test session's Ray is left alone."""

import json
import sys
import threading
import time

import pandas as pd
import ray
from ray.cluster_utils import Cluster

from robust_ray.config import parse_spec
from robust_ray.sweep import run_sweep

out, kill = sys.argv[1], "--kill" in sys.argv
max_failures = int(sys.argv[sys.argv.index("--max-failures") + 1]) if "--max-failures" in sys.argv else 3
cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
cluster.wait_for_nodes()

spec = parse_spec(
    {
        "name": "cluster",
        "architectures": ["lenet5"],
        "training": {"max_epochs": 2, "patience": 1},
        "design": {"type": "one_factor", "factors": {"gaussian_l2": {"levels": [2.0, 4.0], "per_class": 20},
                                                      "label_error": {"levels": [0.1, 0.2, 0.3]}}},
        "suites": {"mnist-test": {"n": 200}, "mnist-c": {"levels": [2.0], "n": 200}},
        "execution": {"max_failures": max_failures},
    }
)
lines, killed = [], []


def log(line: str) -> None:
    lines.append(line)
    if kill and not killed and "1 done" in line:
        killed.append(time.time())
        threading.Thread(target=cluster.remove_node, args=(workers[0],)).start()


run_sweep(spec, output=out, address=cluster.address, log=log)
trials = pd.read_parquet(f"{out}/trials.parquet")
report = {"status": trials["status"].tolist(), "error": trials["error"].dropna().tolist(), "killed": bool(killed)}
print(json.dumps({**report, "log": lines}), flush=True)
ray.shutdown()
cluster.shutdown()
