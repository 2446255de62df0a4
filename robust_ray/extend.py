"""``robust-ray run SPEC --output DIR --extend``: a finished sweep grows without retraining.

Trials are content-addressed (:func:`robust_ray.plan.trial_key`). The new spec is planned;
a planned trial whose key the folder already holds keeps that trial's id, and its row if it
finished (``ok`` or ``diverged``): it is not trained again. Only the new keys train (and
the old ones that failed or were interrupted, under their ids); kept models are evaluated
on the suites they lack (from their saved weights; without them, or for a suite built
against a reference model, they retrain, and the plan says why). Trials of an earlier spec
that the new one no longer holds stay in the files with ``in_spec = false``. Nothing here
imports Ray: :mod:`robust_ray.sweep` runs what this plans.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from dataclasses import dataclass

import pandas as pd

from .errors import SpecError, UserError
from .plan import Plan, TrialPlan
from .spec import SweepSpec
from .storage import Storage

FINISHED = ("ok", "diverged")
SPEC_HISTORY = "sweep_history.json"  # every spec the folder was run with, oldest first, each with its time


@dataclass(frozen=True)
class Extension:
    """What an extend does; ``plan`` is the new spec's plan with the ids it keeps."""

    plan: Plan
    kept: tuple[str, ...]  # finished trials reused as they are
    train: tuple[TrialPlan, ...]  # trained now: new keys, old ones not finished, kept ones that must retrain
    evaluate: dict[str, tuple[str, ...]]  # suite -> kept trials evaluated on it from their saved weights
    retrain: dict[str, str]  # trial id -> why a finished trial trains again
    gone: tuple[str, ...]  # trials of earlier specs the new one no longer holds (in_spec = false)

    def summary(self) -> str:
        n_eval = sum(len(v) for v in self.evaluate.values())
        lines = [f"extend: {len(self.kept)} kept, {len(self.train) - len(self.retrain)} new, "
                 f"{len(self.retrain)} retrained, {n_eval} kept-model evaluations on {len(self.evaluate)} suite(s), "
                 f"{len(self.gone)} no longer in the spec"]  # fmt: skip
        lines += [f"  {s}: evaluate {len(ids)} kept model(s)" for s, ids in self.evaluate.items()]
        lines += [f"  {tid} retrains: {why}" for tid, why in self.retrain.items()]
        return "\n".join(lines)


def _number(tid: str) -> int:
    m = re.fullmatch(r"t(\d+)", str(tid))
    return int(m.group(1)) if m else -1


def read_previous(
    out: Storage, spec: SweepSpec, file: str | None
) -> tuple[dict, pd.DataFrame, pd.DataFrame, pd.DataFrame | None]:
    """The folder's spec (sweep.json) and results (trials, metrics, history or None),
    refusing a folder an extend cannot grow."""
    from .results import HISTORY, read_files

    if not out.exists("sweep.json") or not out.exists("trials.parquet"):
        raise UserError(f"--extend: {out.shown} holds no finished sweep (sweep.json, trials.parquet): run it first")
    old = json.loads(out.read_text("sweep.json"))
    if old.get("dataset", {}).get("name") != spec.dataset.name:
        raise SpecError(file, "dataset.name", f"{spec.dataset.name!r} differs from the {old.get('dataset', {}).get('name')!r} "
                        f"of {out.shown}: an extended sweep keeps its dataset; start a new --output")  # fmt: skip
    files = read_files(out.uri)
    trials, metrics = pd.read_parquet(files["trials.parquet"]), pd.read_parquet(files["metrics.parquet"])
    history = pd.read_parquet(files[HISTORY]) if HISTORY in files else None
    if "trial_key" not in trials or trials["trial_key"].isna().any():
        raise UserError(f"--extend: {out.shown_of('trials.parquet')} has no trial_key for every trial (written by an "
                        f"older robust_ray): its trials cannot be matched; start a new --output")  # fmt: skip
    return old, trials, metrics, history


def plan_extension(spec: SweepSpec, plan: Plan, trials: pd.DataFrame) -> Extension:
    """Match ``plan`` (the new spec's) against the folder's ``trials`` by key."""
    from .suites import suite_def

    by_key = {str(r["trial_key"]): r for r in trials.to_dict("records")}
    next_id = max((_number(t) for t in trials["trial_id"]), default=-1) + 1
    planned, kept, train, retrain = [], [], [], {}
    evaluate: dict[str, list[str]] = {}
    for t in plan.trials:
        old = by_key.get(t.key)
        if old is None:
            t = dataclasses.replace(t, trial_id=f"t{next_id:04d}")
            next_id += 1
            train.append(t)
        else:
            t = dataclasses.replace(t, trial_id=str(old["trial_id"]))
            if old["status"] not in FINISHED:
                train.append(t)
            elif (why := _needs_retrain(spec, old, evaluate, suite_def)) is not None:
                retrain[t.trial_id] = why
                train.append(t)
            else:
                kept.append(t.trial_id)
        planned.append(t)
    for ids in evaluate.values():  # a trial that retrains is evaluated in its run
        ids[:] = [i for i in ids if i not in retrain]
    keys = {t.key for t in plan.trials}
    gone = tuple(str(i) for i, k in zip(trials["trial_id"], trials["trial_key"]) if str(k) not in keys)
    return Extension(dataclasses.replace(plan, trials=planned), tuple(kept), tuple(train),
                     {s: tuple(v) for s, v in evaluate.items() if v}, retrain, gone)  # fmt: skip


def _needs_retrain(spec: SweepSpec, old: dict, evaluate: dict[str, list[str]], suite_def) -> str | None:
    """Why a finished trial must train again to cover the new spec's suites, or None (the
    suites it lacks are added to ``evaluate``). A diverged trial has no accuracy to add."""
    lacking = [s for s in spec.suites if pd.isna(old.get(f"acc_{s}", float("nan")))]
    if not lacking or old["status"] != "ok":
        return None
    model = old.get("model_uri")
    for s in lacking:
        if suite_def(spec.suite_type(s)).needs_model:
            return f"suite {s} is built against a reference model; a kept model is evaluated on it by training again"
        if model is None or pd.isna(model):
            return f"no saved model to evaluate on suite {s} (training.save_models was off)"
    for s in lacking:
        evaluate.setdefault(s, []).append(str(old["trial_id"]))
    return None


def merge(old_trials: pd.DataFrame, old_metrics: pd.DataFrame, old_history: pd.DataFrame | None,
          new_trials: pd.DataFrame, new_metrics: pd.DataFrame, new_history: pd.DataFrame | None,
          ext: Extension, sweep: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame | None]:  # fmt: skip
    """The folder's files after an extend: the rows of the trials trained now replace their
    old rows (if any); every other old row stays as it was, ``in_spec`` false where the new
    plan no longer holds it."""
    trained = set(new_trials["trial_id"])
    histories = [
        h[~h["trial_id"].isin(trained)] if h is old_history else h for h in (old_history, new_history) if h is not None
    ]
    history = pd.concat(histories, ignore_index=True) if histories else None
    keep_t = old_trials[~old_trials["trial_id"].isin(trained)]
    keep_m = old_metrics[~old_metrics["trial_id"].isin(trained)]
    if "sweep" not in keep_m:
        keep_m = keep_m.assign(sweep=pd.Series(sweep, index=keep_m.index, dtype="string"))
    in_plan = {t.trial_id for t in ext.plan.trials}
    trials = pd.concat([keep_t, new_trials], ignore_index=True)
    trials["in_spec"] = trials["trial_id"].isin(in_plan)
    order = trials["trial_id"].map(_number).sort_values(kind="stable").index
    trials = trials.loc[order].reset_index(drop=True)
    metrics = pd.concat([keep_m, new_metrics], ignore_index=True)
    for col, kind in (("sweep", "string"), ("flipped", "Int64"), ("n_correct", "Int64")):
        if col in metrics:
            metrics[col] = metrics[col].astype(kind)
    return trials, metrics, history


def record(out: Storage, old_spec: dict, old_trials: pd.DataFrame, spec_json: str, experiment: str | None) -> None:
    """sweep.json becomes the new spec (what describes the folder now, as ``analyze`` reads
    it); sweep_history.json keeps every spec with its time and Tune experiment (None: the
    extend trained nothing). The first spec's time is its first trial's start."""
    first = pd.to_datetime(old_trials["started_at"]).min() if "started_at" in old_trials else pd.NaT
    history = json.loads(out.read_text(SPEC_HISTORY)) if out.exists(SPEC_HISTORY) else [
        {"time": None if pd.isna(first) else first.strftime("%Y-%m-%dT%H:%M:%S%z"), "experiment": "tune",
         "spec": old_spec}]  # fmt: skip
    history.append(
        {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "experiment": experiment, "spec": json.loads(spec_json)}
    )
    out.write_bytes(SPEC_HISTORY, json.dumps(history, indent=1).encode())
    out.write_bytes("sweep.json", spec_json.encode())


def next_experiment(out: Storage) -> str:
    """A new Tune experiment folder for this extend's trials; the earlier ones stay."""
    n = 1
    while out.exists(f"tune-{n}"):
        n += 1
    return f"tune-{n}"
