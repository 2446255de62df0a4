"""``execution.fuse`` (issue 19 item 1) in a real sweep: K trials per Tune trial, the files
exactly as an unfused sweep writes them (ids, keys, columns, statuses), accuracies within
what reordered float reductions move, and each fused model kept and evaluated."""

from __future__ import annotations

import pandas as pd
import pytest

from robust_ray.config import parse_spec
from robust_ray.fused import fuse_groups, members
from robust_ray.plan import make_plan
from robust_ray.runtime import Execution
from robust_ray.sweep import run_sweep

SPEC = {
    "name": "fuse", "architectures": ["lenet5"], "seeds": [0, 1],
    "training": {"max_epochs": 2, "patience": 2, "batch_size": 128},
    "design": {"type": "one_factor", "factors": {"label_error": {"levels": [0.2]}, "class_imbalance": {"levels": [0.4]}}},
    "suites": {"mnist-test": {"n": 300}, "mnist-c": {"levels": [2.0], "n": 200}},
}  # fmt: skip


def test_fusable_trials_are_grouped_by_architecture_up_to_k():
    spec = parse_spec({**SPEC, "architectures": ["lenet5", "alexnet8"], "execution": {"fuse": 4}})
    plans = [t.to_dict() for t in make_plan(spec).trials]
    grid = fuse_groups(plans, spec)
    fused = [g for g in grid if "fused" in g]
    assert [len(g["fused"]) for g in fused] == [4, 2]  # 6 LeNet-5 trials; AlexNet-8 has dropout: alone
    assert all(m["arch"] == "lenet5" for g in fused for m in g["fused"])
    assert sorted(i for g in grid for i in members(g)) == sorted(p["trial_id"] for p in plans)
    assert fuse_groups(plans, parse_spec({**SPEC, "execution": {"fuse": "auto"}})) == plans  # auto on CPU: 1


@pytest.mark.slow
def test_a_fused_sweep_writes_what_an_unfused_one_writes(tmp_path, ray_session):
    logs = []
    fused_out = run_sweep(
        parse_spec({**SPEC, "execution": {"fuse": 3}}), Execution(output=str(tmp_path / "f"), log=logs.append)
    )
    plain_out = run_sweep(parse_spec(SPEC), Execution(output=str(tmp_path / "p"), log=lambda *_: None))
    assert any("6 trials in 2 Tune trials" in line for line in logs), logs
    f, p = (pd.read_parquet(f"{o}/trials.parquet").set_index("trial_id") for o in (fused_out, plain_out))
    assert list(f.columns) == list(p.columns) and list(f.index) == list(p.index)
    assert (f["status"] == "ok").all() and (f["trial_key"] == p["trial_key"]).all()
    assert (f["n_train"] == p["n_train"]).all() and (f["epochs"] == p["epochs"]).all()
    # float reductions in another order: a few test images either way after 2 epochs
    for col in ("val_acc", "acc_mnist-test", "acc_mnist-c"):
        assert (f[col] - p[col]).abs().max() < 0.03, (col, f[col].tolist(), p[col].tolist())
    assert f["model_uri"].notna().all()  # each fused model kept under its own trial id
    mf, mp = (pd.read_parquet(f"{o}/metrics.parquet") for o in (fused_out, plain_out))
    assert len(mf) == len(mp) and set(mf["trial_id"]) == set(mp["trial_id"])
    hf = pd.read_parquet(f"{fused_out}/history.parquet")
    assert len(hf) == f["epochs"].sum()
