"""Trackers through Ray Tune's own callbacks (spec ``tracking``): one real sweep logs to a
real local MLflow store (read back with ``mlflow.search_runs``) and to TensorBoard event
files (read back record by record); W&B offline runs where wandb is installed; a missing
package is refused naming ``tracking.<name>`` before anything trains."""

from __future__ import annotations

import copy
import importlib.util
import struct

import pandas as pd
import pytest

from robust_ray import cli
from robust_ray.config import parse_spec
from robust_ray.runtime import Execution
from robust_ray.sweep import run_sweep

SPEC = {
    "name": "tracked",
    "dataset": {"name": "mnist-5k"},
    "architectures": ["lenet5"],
    "training": {"max_epochs": 2, "patience": 2, "batch_size": 256},
    "design": {"type": "one_factor", "factors": {"label_error": {"levels": [0.2]}}},
    "suites": {"mnist-test": {"n": 200}},
}


def read_events(path) -> list:
    """TensorBoard's event file: TFRecords (length, its CRC, an Event proto, its CRC)."""
    from tensorboardX.proto import event_pb2

    data, i, events = path.read_bytes(), 0, []
    while i < len(data):
        (n,) = struct.unpack("<Q", data[i : i + 8])
        events.append(event_pb2.Event.FromString(data[i + 12 : i + 12 + n]))
        i += 12 + n + 4
    return events


@pytest.fixture(scope="module")
def tracked_run(ray_session, tmp_path_factory):
    pytest.importorskip("mlflow")
    pytest.importorskip("tensorboardX")
    root = tmp_path_factory.mktemp("tracked")
    uri = f"sqlite:///{root}/mlflow.db"  # MLflow 3 keeps a plain folder store in maintenance mode only
    spec = {**SPEC, "tracking": {"mlflow": {"tracking_uri": uri, "experiment": "exp18"}, "tensorboard": True}}
    out = root / "out"
    run_sweep(parse_spec(spec), Execution(output=str(out), log=lambda *_: None))
    return out, uri


def test_mlflow_has_one_run_per_trial_with_its_levels_epochs_and_accuracies(tracked_run):
    import mlflow

    out, uri = tracked_run
    trials = pd.read_parquet(out / "trials.parquet").set_index("trial_id")
    history = pd.read_parquet(out / "history.parquet")
    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(experiment_names=["exp18"]).set_index("params.trial_id")
    assert sorted(runs.index) == sorted(trials.index) and (runs["status"] == "FINISHED").all()
    assert sorted(runs["params.label_error"].astype(float)) == sorted(trials["label_error"])
    assert set(runs["params.arch"]) == {"lenet5"} and set(runs["tags.sweep"]) == {"tracked"}
    assert "params.pools" not in runs and "params.trial/pools" not in runs  # not the config's dataset digests
    client = mlflow.MlflowClient()
    for tid, run in runs.iterrows():
        assert run["metrics.acc_mnist-test"] == trials.loc[tid, "acc_mnist-test"]
        curve = sorted((m.step, m.value) for m in client.get_metric_history(run["run_id"], "val_acc"))
        epochs = history[history["trial_id"] == tid]
        # one point per epoch (report k at step k), then the final report's val_acc (kept weights)
        assert [v for _, v in curve[: len(epochs)]] == epochs["val_acc"].tolist()
        assert [s for s, _ in curve[: len(epochs)]] == epochs["epoch"].tolist()


def test_tensorboard_event_files_hold_every_epoch(tracked_run):
    out, _ = tracked_run
    history = pd.read_parquet(out / "history.parquet")
    for tid, epochs in history.groupby("trial_id"):
        files = list((out / "tune" / tid).glob("events.out.tfevents.*"))
        assert len(files) == 1, tid
        points = {}
        for ev in read_events(files[0]):
            for v in ev.summary.value:
                if v.tag.endswith("/val_acc"):
                    points[ev.step] = v.simple_value
        assert [points[e] for e in epochs["epoch"]] == pytest.approx(epochs["val_acc"].tolist(), abs=1e-6)


def test_wandb_offline_writes_a_run_per_trial(ray_session, tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    spec = {**copy.deepcopy(SPEC), "tracking": {"wandb": {"project": "p18", "mode": "offline"}}}
    spec["design"]["factors"]["label_error"]["levels"] = [0.1]
    run_sweep(parse_spec(spec), Execution(output=str(tmp_path / "out"), log=lambda *_: None))
    assert len(list((tmp_path / "wandb").glob("offline-run-*"))) == 2


@pytest.mark.parametrize("key, module", [("mlflow", "mlflow"), ("tensorboard", "tensorboardX"), ("wandb", "wandb")])
def test_a_missing_tracker_package_is_refused_before_anything_trains(tmp_path, monkeypatch, capsys, key, module):
    import yaml

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == module else real(name, *a))
    monkeypatch.setattr("robust_ray.runtime.connect", lambda *a: pytest.fail("Ray started before the check"))
    spec = {**SPEC, "tracking": {key: True if key == "tensorboard" else {}}}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(spec))
    assert cli.main(["run", str(path), "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"{path}: tracking.{key}: needs the {module} package" in err and f'pip install "robust-ray[{key}]"' in err
    assert not (tmp_path / "out" / "trials.parquet").exists()
