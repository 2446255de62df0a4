"""Run a sweep on Ray Tune: plan, place datasets, one Tune trial per plan row, write Parquet."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import socket
import time
import traceback
from pathlib import Path
import ray
from ray import tune
from ray.tune.logger import JsonLoggerCallback

from . import data
from .config import SweepSpec
from .diff import describe_change
from .errors import RunAborted, UserError
from .feasibility import check_levels
from .interrupt import Signals
from .lock import OutputLock
from .plan import Plan, make_plan, memory_note
from .results import trial_rows, write_results
from .storage import Storage
from .suites import suite_def
from .store import place
from .trial import run_trial

TUNE_DIR = "tune"  # Ray Tune's own experiment folder inside the output folder (for --resume)


def trial_label(trial: dict, parts: tuple[str, ...] = ()) -> str:
    """A planned trial as people name it: ``t0003 gaussian_l2=6`` (the factors applied, not
    those at their "not applied" level; ``clean`` when none is), then ``parts`` of
    ``arch``, ``recipe``, ``seed``."""
    from .factors import factor_def

    levels = " ".join(f"{f}={v:g}" for f, v in (trial.get("levels") or {}).items() if not factor_def(f).is_identity(v))
    extra = " ".join(f"{trial[p]}" if p != "seed" else f"seed {trial[p]}" for p in parts if p in trial)
    return " ".join(x for x in (trial.get("trial_id", "?"), levels or "clean", extra) if x)


def label_of(spec: SweepSpec):
    """:func:`trial_label` naming the architecture, recipe and seed where the sweep varies them."""
    parts = tuple(p for p, n in (("arch", len(spec.architectures)), ("recipe", len(spec.recipe_list())),
                                 ("seed", len(spec.seeds))) if n > 1)  # fmt: skip
    return lambda trial: trial_label(trial, parts)


class Progress(tune.Callback):
    """One line per finished trial: what it was, done/running/failed, ETA and the best so far.
    Counts come from the trials' states, so a resumed sweep counts what it had already done.

    The ETA is the trials left times the pace between finishes since the first one; until
    enough trials have finished to measure it, the line says "ETA after the first trials"."""

    def __init__(self, total: int, metric: str, log=print, label=trial_label):
        self.total, self.metric, self.log, self.label = total, metric, log, label
        self.best: tuple[float, str] | None = None
        self.t0, self.done_at_start, self.first_finish = time.time(), None, None

    def _line(self, trials, current, outcome: str) -> None:
        status = {t: ("TERMINATED" if outcome == "done" else "ERROR") if t is current else t.status for t in trials}
        done = sum(s == "TERMINATED" for s in status.values())
        failed = sum(s == "ERROR" for s in status.values())
        running = sum(s == "RUNNING" for s in status.values())
        now = time.time()
        if self.done_at_start is None:  # first finish since (re)start: the others were done before
            self.done_at_start, self.first_finish = done + failed - 1, now
        elapsed = now - self.t0
        new = done + failed - self.done_at_start
        left = self.total - done - failed
        # The pace is measured from the first finish, not from the start: start-up (Ray,
        # datasets, the first actors) is paid once and would inflate every estimate. With
        # `running` trials at once, finishes come in bursts: wait for that many intervals.
        if left == 0:
            eta = ", done"
        elif new - 1 >= max(running, 1) and now > self.first_finish:
            eta = f", ETA {(now - self.first_finish) / (new - 1) * left:.0f}s"
        else:
            eta = ", ETA after the first trials"
        best = f", best {self.metric}={self.best[0]:.4f} ({self.best[1]})" if self.best else ""
        what = self.label(current.config.get("trial", current.config))
        self.log(
            f"{what} {outcome} | trials: {done} done, {running} running, {failed} failed of {self.total}"
            f" | {elapsed:.0f}s elapsed{eta}{best}"
        )

    def setup(self, **info):
        self.t0, self.done_at_start = time.time(), None

    def __getstate__(self):  # Tune saves callbacks with the experiment; the sink may not pickle
        return {**self.__dict__, "log": print}

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if result.get("done") and self.metric in result:
            value = float(result[self.metric])
            if self.best is None or value > self.best[0]:
                self.best = (value, trial.config["trial"]["trial_id"])

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._line(trials, trial, "done")

    def on_trial_error(self, iteration, trials, trial, **info):
        self._line(trials, trial, "failed")


class PartialResults(tune.Callback):
    """trials.parquet and metrics.parquet rewritten while the sweep runs: after a trial
    finishes, at most every ``every`` seconds, so pandas, DuckDB and ``analyze`` read a
    running (or killed) sweep. Trials not finished yet are ``pending`` (or ``running``) with
    empty metrics; the final write after ``fit`` replaces the files."""

    # Tune pickles its callbacks with the experiment and a restored Tuner unpickles them; the
    # writer (plan, storage) is looked up by the output's URI, registered by the running driver
    SINKS: dict = {}

    def __init__(self, uri: str, every: float = 2.0):
        self.uri, self.every = uri, every
        self.last, self.dirty, self.trials = 0.0, False, []

    def __getstate__(self):
        return {"uri": self.uri, "every": self.every, "last": 0.0, "dirty": False, "trials": []}

    def _flush(self) -> None:
        write = self.SINKS.get(self.uri)
        if write is None or not self.dirty or time.time() - self.last < self.every:
            return
        outcomes, running = {}, set()
        for t in self.trials:
            tid = t.config["trial"]["trial_id"]
            if t.status == "TERMINATED" and t.last_result.get("done"):
                outcomes[tid] = t.last_result
            elif t.status == "ERROR":
                outcomes[tid] = {"status": "failed", "error": _trial_error(t)}
            elif t.status == "RUNNING":
                running.add(tid)
        write(outcomes, running)
        self.last, self.dirty = time.time(), False

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.trials, self.dirty = trials, True
        self._flush()

    on_trial_error = on_trial_complete

    def on_step_end(self, iteration, trials, **info):
        self._flush()


class SignalBridge(tune.Callback):
    """Hands Ctrl-C and SIGTERM to Tune's own handler once Tune's loop runs (its ``setup``
    comes after Tune installed that handler), recording which signal it was. The driver's
    :class:`Signals` is looked up at run time: Tune pickles callbacks with its state."""

    ACTIVE: Signals | None = None

    def setup(self, **info):
        if SignalBridge.ACTIVE is not None:
            SignalBridge.ACTIVE.hand_to(signal.getsignal(signal.SIGINT))


def _trial_error(trial) -> str:
    try:
        with open(trial.error_file) as f:
            return f.read()
    except (OSError, TypeError):  # not written yet: the final write reads Tune's error.txt
        return "trial raised (its error is written when the sweep ends)"


def _reachable(address: str, timeout: float = 5.0) -> str | None:
    """Why nothing listens at a ``host:port`` or ``ray://host:port`` address, or None. Ray's
    own client retries an absent GCS for minutes; a TCP connect answers in seconds."""
    hostport = address.removeprefix("ray://")
    host, sep, port = hostport.rpartition(":")
    if address == "auto" or not sep or not port.isdigit():
        return None  # "auto" and other forms: Ray itself fails fast or knows better
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as e:
        return str(e)
    return None


def connect(address: str | None, num_cpus: int | None = None) -> None:
    """Start local Ray, or join the cluster at ``address``; a missing cluster is a user error."""
    if ray.is_initialized():
        return
    if address and (why := _reachable(address)) is not None:
        raise UserError(f"--address {address}: no Ray cluster reachable there ({why})")
    if not address:
        # A new local Ray turns token auth on by itself (a token in ~/.ray/auth_token), with
        # a warning meant for clusters: on our own local instance it says nothing to act on.
        logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
    try:
        # no --address: a fresh local Ray, never a cluster some other process left running here
        ray.init(address=address or "local", num_cpus=None if address else num_cpus, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise UserError(f"--address {address}: no Ray cluster reachable there ({e})") from None


def _tune_env() -> None:
    """Our Progress lines replace Tune's tables; only the JSON logger is kept (ResultGrid
    reads it), not CSV/TensorBoard. The experiment state is saved every 2 s rather than
    Tune's adaptive period (10 s and more), so a driver that dies loses at most the trials
    of the last 2 s from the resume state."""
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "2")


def reuse_actors(spec: SweepSpec) -> bool:
    """Reusing trial actors saves seconds per trial (no new process, torch already
    imported), but Tune can hand a retried trial a cached actor whose node has just died,
    burning all its retries at once (seen in tests/test_cluster.py). So by default: reuse
    on a one-node Ray, where no node dies alone; fresh actors on a cluster, where trials are
    long and a lost node is the failure to survive."""
    if spec.execution.reuse_actors is not None:
        return spec.execution.reuse_actors
    return sum(1 for n in ray.nodes() if n.get("Alive")) == 1


def _tuner(spec: SweepSpec, plan: Plan, refs: dict, out: Storage, resume: bool, log, partial=None) -> tune.Tuner:
    _tune_env()
    trainable = tune.with_resources(
        tune.with_parameters(run_trial, spec=spec, refs=refs),
        {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu},
    )
    if resume:
        return tune.Tuner.restore(out.uri_of(TUNE_DIR), trainable, resume_unfinished=True, resume_errored=True)
    # (a restored Tuner keeps the callbacks it was started with, unpickled from its state)
    suites = list(spec.suites)
    metric = f"acc_{next((s for s in suites if spec.suite_type(s) not in ('clean', 'mnist-test')), suites[0])}"
    return tune.Tuner(
        trainable,
        param_space={"trial": tune.grid_search([t.to_dict() for t in plan.trials])},
        tune_config=tune.TuneConfig(
            reuse_actors=reuse_actors(spec),
            max_concurrent_trials=spec.execution.max_concurrent,
            trial_name_creator=lambda t: t.config["trial"]["trial_id"],
            trial_dirname_creator=lambda t: t.config["trial"]["trial_id"],
        ),
        run_config=tune.RunConfig(
            name=TUNE_DIR,
            storage_path=out.uri,
            failure_config=tune.FailureConfig(max_failures=spec.execution.max_failures),
            callbacks=[Progress(len(plan.trials), metric, log, label_of(spec)), JsonLoggerCallback(), SignalBridge(),
                       *([partial] if partial else [])],
            verbose=0,
        ),
    )


def error_text(result) -> str:
    """The failed trial's error with its traceback: Tune's error.txt beside the trial."""
    try:
        with result.filesystem.open_input_stream(f"{result.path}/error.txt") as f:
            return f.read().decode()
    except Exception:  # no file (an older Tune, a lost node's storage): the message alone
        return "".join(traceback.format_exception(result.error))


def suite_conditions(spec: SweepSpec) -> dict[str, dict]:
    """Per suite key: its type and its conditions (name, level, perturbation, parameters such
    as 002's p, r, a or 004's corruption and severity): what ``analyze`` needs beyond the
    ``condition`` column of metrics.parquet. Computed from the spec; nothing is built."""
    shape = data.DATASETS.get(spec.dataset.name).shape
    out = {}
    for key, ss in spec.suites.items():
        sdef = suite_def(spec.suite_type(key))
        conds = sdef.conditions(list(ss.levels or sdef.default_levels), shape)
        out[key] = {"type": sdef.name, "conditions": [dataclasses.asdict(c) for c in conds]}
    return out


def _autoscaler_node_types() -> list[dict]:
    """Resources of the node types the cluster's autoscaler may add: ``ray up`` leaves the
    filled-out config on the head node (the driver runs there with --address auto)."""
    path = os.path.expanduser("~/ray_bootstrap_config.yaml")
    if not os.path.exists(path):
        return []
    import yaml

    with open(path) as f:
        types = (yaml.safe_load(f) or {}).get("available_node_types") or {}
    return [t.get("resources") or {} for t in types.values() if t.get("max_workers", 1) > 0]


def check_resources(spec: SweepSpec) -> None:
    """Refuse, before any trial starts, a per-trial request that no node can ever satisfy
    (Tune would otherwise wait forever): neither a node of the cluster now nor a node type its
    autoscaler may add. ``--no-resource-check`` skips this."""
    need = {"CPU": spec.resources.cpu, "GPU": spec.resources.gpu}

    def fits(r: dict) -> bool:
        return all(r.get(k, 0.0) >= v for k, v in need.items() if v)

    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    if any(fits(r) for r in nodes) or any(fits(r) for r in _autoscaler_node_types()):
        return
    have = "; ".join(f"{r.get('CPU', 0):g} CPU, {r.get('GPU', 0):g} GPU" for r in nodes)
    raise UserError(
        f"resources: each trial asks for {need['CPU']:g} CPU and {need['GPU']:g} GPU, but no node "
        f"has that (nodes: {have}). Lower resources.cpu/gpu, or pass --no-resource-check on an "
        f"autoscaling cluster that will add such nodes."
    )


def claim_output(out: Storage, spec_json: str, resume: bool, file: str | None, what: str = "sweep",
                 same=lambda d: d) -> None:  # fmt: skip
    """``--resume`` needs an interrupted run started from the same spec (compared through
    ``same`` on both sweep.json's); a fresh one needs an output without one."""
    tune_uri = out.uri_of(TUNE_DIR)
    if resume:
        if not out.exists(TUNE_DIR) or not tune.Tuner.can_restore(tune_uri):
            raise UserError(f"--resume: no interrupted {what} to resume under {out.shown_of(TUNE_DIR)}")
        if not out.remote:
            check_not_planted(out.path(""), out.path(TUNE_DIR))
        if out.exists("sweep.json"):
            before, now = same(json.loads(out.read_text("sweep.json"))), same(json.loads(spec_json))
            if before != now:
                raise UserError(
                    f"--resume: {file or 'the spec'} differs from the one {out.uri} was started with, at "
                    f"{describe_change(before, now)}; undo the change, or start a new --output"
                )
    elif out.exists(TUNE_DIR):
        raise UserError(f"{out.shown} already holds a {what}: use --resume to continue it, or another --output")
    elif out.exists("sweep.json") or out.exists("trials.parquet"):
        try:
            name = json.loads(out.read_text("sweep.json")).get("name", "?")
        except (UserError, ValueError, AttributeError):
            name = "?"
        raise UserError(
            f"{out.shown} already holds the results of sweep {name!r} (sweep.json, trials.parquet): "
            f"choose another --output, or delete that folder first"
        )


def check_not_planted(folder: str, tune_dir: str) -> None:
    """``--resume`` unpickles Tune's state (``tuner.pkl``, its callbacks): a pickle someone
    else could write runs their code here. Refuse unless the output folder, the Tune folder
    and the files Tune restores from are ours and writable by no one else."""
    folder = folder.rstrip("/") or "/"
    paths = [folder, tune_dir] + sorted(
        str(p) for p in Path(tune_dir).iterdir() if p.is_file() and p.suffix in (".pkl", ".json")
    )
    me = os.geteuid()
    for path in paths:
        st = os.stat(path)
        if st.st_uid != me:
            why = f"is owned by another user (uid {st.st_uid})"
        elif st.st_mode & 0o022:
            why = f"is writable by others (mode {st.st_mode & 0o777:o})"
        else:
            continue
        raise UserError(
            f"--resume: {path} {why}; resuming unpickles Tune's state there, which runs any code "
            f"planted in it. Resume only folders you created and no one else can write "
            f"(chmod -R go-w {folder}), or start a new --output"
        )


def finished_outcomes(grid) -> dict[str, dict]:
    """What each trial of a ResultGrid finished with: its final report (``done``) or its
    error. A trial stopped mid-way (Ctrl-C) has only per-epoch reports: it is left out, so
    it is written ``interrupted`` with no metrics rather than with a partial accuracy."""
    outcomes = {}
    for r in grid:
        tid = r.path.rstrip("/").rsplit("/", 1)[-1]  # the trial's folder is named by its trial_id
        if r.error is not None:
            outcomes[tid] = {**(r.metrics or {}), "status": "failed", "error": error_text(r)}
        elif (r.metrics or {}).get("done"):
            outcomes[tid] = r.metrics
    return outcomes


def quiet_tune_interrupt() -> None:
    """Tune's own "Resume experiment with: Tuner.restore(...)" is not how our users resume:
    the CLI prints the ``robust-ray ... --resume`` line instead."""
    logging.getLogger("ray.tune.tune").setLevel(logging.ERROR)
    # trials stopped before their first report have no result.json; we write them
    # ``interrupted`` ourselves, so Tune's per-trial FileNotFoundError warnings say nothing
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)


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
    signals: Signals | None = None,
) -> str:
    """Run ``spec`` end to end; return the output location holding the Parquet files.

    Everything that can be refused is refused before anything is written: the plan, the
    data, the cluster, the resources, the output location. The output is locked for the
    run (a second driver is refused); on Ctrl-C or SIGTERM (``signals``), finished trials
    are kept and the others written ``interrupted``.
    """
    if spec.design is None:
        raise UserError(f"{file or 'the spec'}: no design, only a search section: use `robust-ray search`")
    out = Storage(output or f"results/{spec.name}")
    spec_json = json.dumps(spec.model_dump(mode="json"), indent=2)
    claim_output(out, spec_json, resume, file)
    lock = OutputLock(out, spec.name).acquire()
    try:
        return _run_locked(spec, file, out, spec_json, address, resume, data_root, num_cpus, resource_check, log,
                           signals)  # fmt: skip
    finally:
        lock.release()


def _run_locked(spec, file, out, spec_json, address, resume, data_root, num_cpus, resource_check, log, signals) -> str:
    """:func:`run_sweep` once the output folder is claimed and locked."""
    plan = make_plan(spec)
    if resource_check and address is None and (note := memory_note(spec, plan)) is not None:
        raise UserError(f"{file or 'the spec'}: {note}; lower per_class or the suites' n, or pass --no-resource-check")
    base = data.load(spec.dataset.name, data_root or spec.dataset.root, spec.dataset.download)
    check_levels(spec, plan, base, file)
    log(f"{spec.name}: {len(plan.trials)} trials, {len(plan.datasets)} datasets on {spec.dataset.name}")
    connect(address, num_cpus)
    if resource_check:
        check_resources(spec)
    out.probe()
    refs = place(plan, base, spec, file, log)

    out.write_bytes("sweep.json", spec_json.encode())
    out.write_bytes("suites.json", json.dumps(suite_conditions(spec), indent=1).encode())
    plans, suites = [t.to_dict() for t in plan.trials], list(spec.suites)

    def write_partial(outcomes: dict, running: set) -> None:
        write_results(out, *trial_rows(spec.name, plans, outcomes, suites, running=running))

    PartialResults.SINKS[out.uri] = write_partial
    SignalBridge.ACTIVE = signals
    quiet_tune_interrupt()
    try:
        if not resume:  # a resumed sweep's files already hold what it had finished
            write_partial({}, set())
        grid = _tuner(spec, plan, refs, out, resume, log, PartialResults(out.uri)).fit()
    except Exception as e:  # Tune's own loop failed (seen: OutOfMemoryError re-raised by the controller)
        raise RunAborted(out.shown, e) from e
    finally:
        PartialResults.SINKS.pop(out.uri, None)
        SignalBridge.ACTIVE = None

    interrupted = signals is not None and signals.code is not None
    trials, metrics = trial_rows(spec.name, plans, finished_outcomes(grid), suites, interrupted=interrupted)
    write_results(out, trials, metrics)
    log(f"{spec.name}: {status_counts(trials)} -> {out.shown_of('trials.parquet')}, metrics.parquet")
    return out.uri


def status_counts(trials) -> str:
    """``27 trials: 25 ok, 1 diverged, 1 failed``: every status present, in a fixed order."""
    counts = trials["status"].value_counts()
    order = ["ok", "diverged", "failed", "interrupted", "pending", "running"]
    parts = [f"{int(counts[s])} {s}" for s in order if s in counts] + [
        f"{int(n)} {s}" for s, n in counts.items() if s not in order]  # fmt: skip
    return f"{len(trials)} trials: " + ", ".join(parts)
