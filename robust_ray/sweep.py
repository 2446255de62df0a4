"""Run a sweep on Ray Tune: plan, place datasets, one Tune trial per plan row, write Parquet."""

from __future__ import annotations

import json
import os
import time
import ray
from ray import tune

from . import data
from .config import SweepSpec
from .errors import UserError
from .feasibility import check_levels
from .plan import Plan, make_plan
from .results import trial_rows, write_results
from .storage import Storage
from .store import place
from .trial import run_trial

TUNE_DIR = "tune"  # Ray Tune's own experiment folder inside the output folder (for --resume)


class Progress(tune.Callback):
    """One line per finished trial: done/running/failed, ETA and the best so far."""

    def __init__(self, total: int, metric: str, log=print):
        self.total, self.metric, self.log = total, metric, log
        self.done = self.failed = 0
        self.best: tuple[float, str] | None = None
        self.t0 = time.time()

    def _line(self, trials, current) -> None:
        finished = self.done + self.failed
        running = sum(t.status == "RUNNING" and t is not current for t in trials)
        elapsed = time.time() - self.t0
        eta = elapsed / finished * (self.total - finished) if finished else float("nan")
        best = f", best {self.metric}={self.best[0]:.4f} ({self.best[1]})" if self.best else ""
        self.log(
            f"trials: {self.done} done, {running} running, {self.failed} failed of {self.total}"
            f" | {elapsed:.0f}s elapsed, ETA {eta:.0f}s{best}"
        )

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if result.get("done") and self.metric in result:
            value = float(result[self.metric])
            if self.best is None or value > self.best[0]:
                self.best = (value, trial.config["trial"]["trial_id"])

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.done += 1
        self._line(trials, trial)

    def on_trial_error(self, iteration, trials, trial, **info):
        self.failed += 1
        self._line(trials, trial)


def connect(address: str | None, num_cpus: int | None = None) -> None:
    """Start local Ray, or join the cluster at ``address``; a missing cluster is a user error."""
    if ray.is_initialized():
        return
    try:
        ray.init(address=address, num_cpus=None if address else num_cpus, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise UserError(f"--address {address}: no Ray cluster reachable there ({e})") from None


def _quiet_tune() -> None:
    """Our Progress lines replace Tune's tables; results come from the experiment state,
    so Tune's per-trial CSV/JSON/TensorBoard loggers are not needed either."""
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")


def _tuner(spec: SweepSpec, plan: Plan, refs: dict, out: Storage, resume: bool, log) -> tune.Tuner:
    _quiet_tune()
    trainable = tune.with_resources(
        tune.with_parameters(run_trial, spec=spec, refs=refs),
        {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu},
    )
    if resume:
        return tune.Tuner.restore(out.uri_of(TUNE_DIR), trainable, resume_unfinished=True, resume_errored=True)
    suites = list(spec.suites)
    metric = f"acc_{next((s for s in suites if spec.suite_type(s) not in ('clean', 'mnist-test')), suites[0])}"
    return tune.Tuner(
        trainable,
        param_space={"trial": tune.grid_search([t.to_dict() for t in plan.trials])},
        tune_config=tune.TuneConfig(
            reuse_actors=True,
            max_concurrent_trials=spec.execution.max_concurrent,
            trial_name_creator=lambda t: t.config["trial"]["trial_id"],
            trial_dirname_creator=lambda t: t.config["trial"]["trial_id"],
        ),
        run_config=tune.RunConfig(
            name=TUNE_DIR,
            storage_path=out.uri,
            failure_config=tune.FailureConfig(max_failures=spec.execution.max_failures),
            callbacks=[Progress(len(plan.trials), metric, log)],
            verbose=0,
        ),
    )


def check_resources(spec: SweepSpec) -> None:
    """Refuse, before any trial starts, a per-trial request that no node can ever satisfy
    (Tune would otherwise wait forever). An autoscaling cluster may add such nodes later:
    ``--no-resource-check`` skips this."""
    need = {"CPU": spec.resources.cpu, "GPU": spec.resources.gpu}
    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    if any(all(r.get(k, 0.0) >= v for k, v in need.items() if v) for r in nodes):
        return
    have = "; ".join(f"{r.get('CPU', 0):g} CPU, {r.get('GPU', 0):g} GPU" for r in nodes)
    raise UserError(
        f"resources: each trial asks for {need['CPU']:g} CPU and {need['GPU']:g} GPU, but no node "
        f"has that (nodes: {have}). Lower resources.cpu/gpu, or pass --no-resource-check on an "
        f"autoscaling cluster that will add such nodes."
    )


def run_sweep(
    spec: SweepSpec,
    file: str | None = None,
    output: str | None = None,
    address: str | None = None,
    resume: bool = False,
    data_root: str | None = None,
    num_cpus: int | None = None,
    resource_check: bool = True,
    log=print,
) -> str:
    """Run ``spec`` end to end; return the output location holding the Parquet files.

    Everything that can be refused is refused before anything is written: the plan, the
    data, the cluster, the resources, the output location.
    """
    out = Storage(output or f"results/{spec.name}")
    spec_json = json.dumps(spec.model_dump(mode="json"), indent=2)
    tune_uri = out.uri_of(TUNE_DIR)
    if resume:
        if not out.exists(TUNE_DIR) or not tune.Tuner.can_restore(tune_uri):
            raise UserError(f"--resume: no interrupted sweep to resume under {tune_uri}")
        if out.exists("sweep.json") and json.loads(out.read_text("sweep.json")) != json.loads(spec_json):
            raise UserError(f"--resume: {file or 'the spec'} differs from the one {out.uri} was started with")
    elif out.exists(TUNE_DIR):
        raise UserError(f"{out.uri} already holds a sweep: use --resume to continue it, or another --output")

    plan = make_plan(spec)
    base = data.load(spec.dataset.name, data_root or spec.dataset.root, spec.dataset.download)
    check_levels(spec, plan, base, file)
    log(f"{spec.name}: {len(plan.trials)} trials, {len(plan.datasets)} datasets on {spec.dataset.name}")
    connect(address, num_cpus)
    if resource_check:
        check_resources(spec)
    out.probe()
    refs = place(plan, base, file, log)

    out.write_bytes("sweep.json", spec_json.encode())
    grid = _tuner(spec, plan, refs, out, resume, log).fit()

    outcomes = {}
    for r in grid:
        tid = r.config["trial"]["trial_id"]
        if r.error is not None:
            outcomes[tid] = {**(r.metrics or {}), "status": "failed", "error": str(r.error)}
        else:
            outcomes[tid] = r.metrics
    trials, metrics = trial_rows(spec.name, [t.to_dict() for t in plan.trials], outcomes)
    write_results(out, trials, metrics)
    ok = int((trials["status"] == "ok").sum())
    log(f"{spec.name}: {ok}/{len(trials)} trials ok -> {out.uri_of('trials.parquet')}, metrics.parquet")
    return out.uri
