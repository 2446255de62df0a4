"""Every Ray and Ray Tune touch point of ``run`` and ``search``, and nothing else.

Connect (a local Ray or a cluster), refuse requests no node can meet, claim the output
folder, place the datasets in the object store (built by Ray tasks, :mod:`.cache`), the
two trainables, the progress lines and the one :func:`make_tuner` both commands fit.
Everything upstream (spec, plan, datasets, trial) is plain Python that imports no Ray;
:mod:`.sweep` and :mod:`.search.run` call in here with what they planned.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import ray
import torch
from ray import tune
from ray.air.integrations.mlflow import MLflowLoggerCallback  # imports mlflow only when one is made
from ray.tune.logger import JsonLoggerCallback
from ray.tune.schedulers import ASHAScheduler

from . import data
from .cache import cache_dir, load_or_build
from .config import SweepSpec
from .data import BaseDataset
from .diff import describe_change
from .errors import RunAborted, SpecError, UserError
from .fused import members
from .interrupt import Interrupted, Signals
from .lock import OutputLock
from .perturb import LevelUnreachable
from .plan import Plan
from .search.study import NUMBER, trial_id
from .search.trial import run_point
from .storage import Storage
from .trial import execute_fused, execute_trial

TUNE_DIR = "tune"  # Ray Tune's own experiment folder inside the output folder (for --resume)


@dataclass(frozen=True)
class Execution:
    """How and where ``run`` or ``search`` executes a spec: built once from the command line
    (:func:`from_args`). ``file`` names the spec in error messages."""

    file: str | None = None
    output: str | None = None  # default: results/<spec name>
    address: str | None = None  # a Ray cluster to join; None: a fresh local Ray
    resume: bool = False
    data_root: str | None = None
    num_cpus: int | None = None  # CPUs of a local Ray
    resource_check: bool = True
    log: Callable[[str], None] = print
    signals: Signals | None = None  # Ctrl-C / SIGTERM of the CLI: finished trials kept, the rest interrupted
    extend: bool = False  # grow the finished sweep in ``output`` (robust_ray.extend)

    @classmethod
    def from_args(cls, args, signals: Signals | None = None) -> Execution:
        return cls(args.spec, args.output, args.address, args.resume, args.data_root, args.num_cpus,
                   resource_check=not args.no_resource_check, signals=signals,
                   extend=getattr(args, "extend", False))  # fmt: skip

    @property
    def interrupted(self) -> bool:
        return self.signals is not None and self.signals.code is not None

    def storage(self, spec: SweepSpec) -> Storage:
        return Storage(self.output or f"results/{spec.name}")


def spec_json(spec: SweepSpec) -> str:
    return json.dumps(spec.model_dump(mode="json"), indent=2)


def prologue(
    spec: SweepSpec, run: Execution, out: Storage, what: str = "sweep", same=lambda d: d, check=lambda base: None
) -> BaseDataset:
    """What ``run`` and ``search`` do before their first dataset, once :func:`claim` holds
    ``out``: load the clean data, run the caller's ``check(base)`` on it, join Ray, refuse
    resources no node has, check that ``out`` takes writes. Returns the clean data.
    Everything here can refuse; nothing is written yet."""
    base = data.load(spec.dataset.name, run.data_root or spec.dataset.root, spec.dataset.download)
    check(base)
    check_trackers(spec, run.file)
    connect(run.address, run.num_cpus)
    if run.resource_check:
        check_resources(spec)
    out.probe()
    return base


def claim(spec: SweepSpec, run: Execution, out: Storage, what: str = "sweep", same=lambda d: d) -> OutputLock:
    """Claim ``out`` (a fresh folder, or the interrupted one to ``--resume``) and lock it for
    this driver; the caller releases the lock when the run ends."""
    claim_output(out, spec_json(spec), run.resume, run.file, what, same)
    return OutputLock(out, spec.name).acquire()


def grid_trial_id(config: dict) -> str:
    """The id of a ``run`` trial: its planned trial's (a search's: :func:`search_trial_id`)."""
    return config["trial"]["trial_id"]


def search_trial_id(config: dict) -> str:
    return trial_id(config[NUMBER])


# --- Ray, resources, the output folder ------------------------------------------------------


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
    """Start local Ray, or join the cluster at ``address``; a missing cluster is a user error,
    also where this process already holds a Ray (a library user's, a test session's)."""
    if address and (why := _reachable(address)) is not None:
        raise UserError(f"--address {address}: no Ray cluster reachable there ({why})")
    if ray.is_initialized():
        return
    if not address:
        # A new local Ray turns token auth on by itself (a token in ~/.ray/auth_token), with
        # a warning meant for clusters: on our own local instance it says nothing to act on.
        logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
    try:
        # no --address: a fresh local Ray, never a cluster some other process left running here
        ray.init(address=address or "local", num_cpus=None if address else num_cpus, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise UserError(f"--address {address}: no Ray cluster reachable there ({e})") from None


def _tune_env(search: bool) -> None:
    """Our Progress lines replace Tune's tables; only the JSON logger is kept (ResultGrid
    reads it), not CSV/TensorBoard. The experiment state is saved every 2 s rather than
    Tune's adaptive period (10 s and more), so a driver that dies loses at most the trials
    of the last 2 s from the resume state."""
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "2")
    if search:  # per-epoch results carry no objective: only the final one does (StudySearch reads that)
        os.environ.setdefault("TUNE_DISABLE_STRICT_METRIC_CHECKING", "1")


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
                    f"{describe_change(before, now)}; undo the change, start a new --output, or (a finished "
                    f"sweep) grow it with --extend instead of --resume, which trains only what the change adds"
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


# --- trackers (spec.tracking): Ray Tune's own logger callbacks ----------------------------

TRACKERS = {"mlflow": ("mlflow", "mlflow"), "tensorboard": ("tensorboardX", "tensorboard"), "wandb": ("wandb", "wandb")}


def check_trackers(spec: SweepSpec, file: str | None) -> None:
    """Refuse, before anything is built or trained, a tracker whose package is missing."""
    import importlib.util

    for key, (module, extra) in TRACKERS.items():
        if getattr(spec.tracking, key) and importlib.util.find_spec(module) is None:
            raise SpecError(file, f"tracking.{key}", f"needs the {module} package, which is not installed: "
                            f'pip install "robust-ray[{extra}]" (or remove tracking.{key})')  # fmt: skip


def tracked_params(config: dict, name_of: Callable[[dict], str]) -> dict:
    """What a tracker records as a trial's parameters: our trial id, and the trial's levels
    (factors not applied left out), architecture, seed, recipe and its options (``run``),
    or the point Optuna proposed (``search``); not the dataset digests of the config."""
    if "trial" in config:
        t = config["trial"]
        levels = {f: v for f, v in (t.get("levels") or {}).items() if v is not None}
        options = {f"recipe_options.{k}": v for k, v in (t.get("recipe_options") or {}).items()}
        return {
            "trial_id": name_of(config),
            "arch": t["arch"],
            "seed": t["seed"],
            "recipe": t.get("recipe"),
            **levels,
            **options,
        }
    return {"trial_id": name_of(config), **config}


class TrialMLflow(MLflowLoggerCallback):
    """Ray Tune's MLflow logger, one run per trial named by our trial id (tags ``trial_id``,
    ``sweep``), with :func:`tracked_params` as its parameters rather than the whole config;
    metrics are Tune's: every numeric value of every report, at step = report number (the
    epochs, then the final report with every ``acc_<suite>``). A module-level class: Tune
    pickles callbacks with the experiment."""

    def __init__(self, name_of: Callable[[dict], str], sweep: str, tracking_uri: str | None = None, **kw):
        super().__init__(tracking_uri, **kw)
        self.name_of, self.sweep = name_of, sweep

    def log_trial_start(self, trial):
        if trial not in self._trial_runs:
            name = self.name_of(trial.config)
            run = self.mlflow_util.start_run(tags={**self.tags, "trial_id": name, "sweep": self.sweep}, run_name=name)
            self._trial_runs[trial] = run.info.run_id
        self.mlflow_util.log_params(
            run_id=self._trial_runs[trial], params_to_log=tracked_params(trial.config, self.name_of)
        )


def tracker_callbacks(spec: SweepSpec, name_of: Callable[[dict], str]) -> list:
    """The callbacks of ``spec.tracking``, each built on Ray Tune's own logger."""
    tr, out = spec.tracking, []
    if tr.mlflow is not None:
        out.append(
            TrialMLflow(name_of, spec.name, tr.mlflow.tracking_uri, experiment_name=tr.mlflow.experiment or spec.name)
        )
    if tr.tensorboard:
        from ray.tune.logger import TBXLoggerCallback

        out.append(TBXLoggerCallback())
    if tr.wandb is not None:
        from ray.air.integrations.wandb import WandbLoggerCallback

        out.append(WandbLoggerCallback(project=tr.wandb.project or spec.name, mode=tr.wandb.mode,
                                       excludes=["metrics_json", "history_json", "achieved_json"]))  # fmt: skip
    return out


# --- progress and partial results --------------------------------------------------------


class Progress(tune.Callback):
    """One line per finished trial: what it was, done/running/failed, ETA and the best so far.
    Counts come from the trials' states, so a resumed sweep counts what it had already done.
    ``label(config)`` names a trial in its line, ``name_of(config)`` is its id (also its Tune
    name and folder, :func:`make_tuner`); ``mode`` says whether the best is the highest or
    the lowest ``metric``.

    The ETA is the trials left times the pace between finishes since the first one; until
    enough trials have finished to measure it, the line says "ETA after the first trials"."""

    def __init__(self, total: int, metric: str, log=print, label=lambda config: str(config), mode: str = "max",
                 name_of: Callable[[dict], str] = grid_trial_id):  # fmt: skip
        self.total, self.metric, self.log, self.label, self.name_of = total, metric, log, label, name_of
        self.sign = 1.0 if mode == "max" else -1.0
        self.best: tuple[float, str] | None = None
        self.t0, self.done_at_start, self.first_finish, self.peak = time.time(), None, None, 1

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
        # `running` trials at once, finishes come in bursts: wait for as many intervals as
        # trials ran at once (the one that just finished was one of them), else two trials
        # that started together and finish seconds apart read as the pace of the sweep.
        self.peak = max(self.peak, running + 1)
        if left == 0:
            eta = ", done"
        elif new - 1 >= self.peak and now > self.first_finish:
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
            if self.best is None or self.sign * value > self.sign * self.best[0]:
                self.best = (value, self.name_of(trial.config))

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
            trial = t.config["trial"]
            if t.status == "TERMINATED" and t.last_result.get("done"):
                outcomes.update(expand(trial, t.last_result))
            elif t.status == "ERROR":
                outcomes.update(expand(trial, {"status": "failed", "error": trial_error(t)}))
            elif t.status == "RUNNING":
                running.update(members(trial))
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


def fit(tuner: tune.Tuner, out: Storage, signals: Signals | None):
    """``tuner.fit()`` under the driver's signals; a failure of Tune's own loop (seen: the
    controller re-raising OutOfMemoryError after the OOM killer took trial workers) becomes
    :class:`RunAborted`, which the CLI reports with the resume command."""
    SignalBridge.ACTIVE = signals
    # Tune's "Resume experiment with: Tuner.restore(...)" is not how our users resume (the
    # CLI prints the robust-ray line), and trials stopped before their first report have no
    # result.json: we write them ``interrupted`` ourselves, so Tune's warnings say nothing
    logging.getLogger("ray.tune.tune").setLevel(logging.ERROR)
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    try:
        return tuner.fit()
    except Exception as e:
        raise RunAborted(out.shown, e) from e
    finally:
        SignalBridge.ACTIVE = None


def finished_outcomes(grid) -> dict[str, dict]:
    """What each trial of a ResultGrid finished with: its final report (``done``) or its
    error. A trial stopped mid-way (Ctrl-C) has only per-epoch reports: it is left out, so
    it is written ``interrupted`` with no metrics rather than with a partial accuracy."""
    outcomes = {}
    for r in grid:
        tid = r.path.rstrip("/").rsplit("/", 1)[-1]  # the trial's folder is named by its trial_id
        trial = (r.config or {}).get("trial") or {"trial_id": tid}
        if r.error is not None:
            failed = {"status": "failed", "error": error_text(r)}
            outcomes.update(expand(trial, failed) if "fused" in trial else {tid: {**with_history(r), **failed}})
        elif (r.metrics or {}).get("done"):
            outcomes.update(expand(trial, r.metrics))
    return outcomes


def expand(trial: dict, result: dict) -> dict[str, dict]:
    """Planned trial id -> outcome, from one Tune trial's final report or failure: a fused
    group's report holds each member's (``fused_json``); a failed group fails every member."""
    if "fused" not in trial:
        return {trial["trial_id"]: result}
    if "fused_json" in result:
        return json.loads(result["fused_json"])
    return {tid: dict(result) for tid in members(trial)}


def with_history(result) -> dict:
    """A Tune result's last metrics, with ``history_json`` (history.parquet's rows) when its
    last report lacks it (a trial that failed or was stopped before its final report): the
    per-epoch reports Tune kept in the trial's result.json, from its last attempt."""
    m = dict(result.metrics or {})
    df = result.metrics_dataframe
    if "history_json" in m or df is None or "epoch" not in df:
        return m
    df = df[df["epoch"].notna()]
    restarts = (df["epoch"].to_numpy() == 1).nonzero()[0]  # a retried trial reports from epoch 1 again
    df = df.iloc[restarts[-1] if len(restarts) else 0 :]
    cols = [c for c in ("epoch", "train_loss", "val_acc", "train_s") if c in df]
    rows = [{k: (int(v) if k == "epoch" else float(v)) for k, v in r.items()} for r in df[cols].to_dict("records")]
    return {**m, "history_json": json.dumps(rows)}


def trial_error(trial) -> str:
    try:
        with open(trial.error_file) as f:
            return f.read()
    except (OSError, TypeError):  # not written yet: the final write reads Tune's error.txt
        return "trial raised (its error is written when the sweep ends)"


def error_text(result) -> str:
    """The failed trial's error with its traceback: Tune's error.txt beside the trial."""
    try:
        with result.filesystem.open_input_stream(f"{result.path}/error.txt") as f:
            return f.read().decode()
    except Exception:  # no file (an older Tune, a lost node's storage): the message alone
        return "".join(traceback.format_exception(result.error))


# --- datasets and trainables --------------------------------------------------------------


@ray.remote(num_returns=2)
def _build_task(key, base: BaseDataset, cache: str | None, reference, ref_arch: str | None):
    return load_or_build(key, base, cache, reference, ref_arch)


def place(plan: Plan, base: BaseDataset, spec: SweepSpec, file: str | None, log=print,
          in_driver: bool = False) -> dict[str, ray.ObjectRef]:  # fmt: skip
    """Build (or load) every dataset of ``plan`` in Ray tasks; return digest -> ObjectRef.

    ``base`` holds the clean splits. Reference models are trained with the trials' resources
    (a GPU when trials get one); pools and suites that attack one wait for it. Blocks until
    all are built, so a level that cannot be reached is reported, naming its spec key,
    before any trial starts.

    ``in_driver`` (a one-node run): datasets that attack no model are built here, in the
    driver, while the reference models train in their tasks, and put in the object store
    (issue 21: a build task's worker spent ~9 s importing for 0.2 s of building).
    """
    base_ref = ray.put(base)
    cache = str(cache_dir()) if cache_dir() else None
    refs: dict[str, ray.ObjectRef] = {"base": base_ref}
    status: dict[ray.ObjectRef, str] = {}
    # models first, so the keys that reference them find their ObjectRef
    local = []
    for digest, key in sorted(plan.datasets.items(), key=lambda kv: kv[1].kind != "model"):
        ref_digest = key.p.get("reference")
        if in_driver and key.kind != "model" and not ref_digest:
            local.append(digest)
            continue
        task = _build_task
        if key.kind == "model" or ref_digest:  # training or gradients: the trials' resources
            task = _build_task.options(num_cpus=spec.resources.cpu, num_gpus=spec.resources.gpu)
        ref_arch = plan.datasets[ref_digest].p["arch"] if ref_digest else None
        refs[digest], done = task.remote(key, base_ref, cache, refs.get(ref_digest), ref_arch)
        status[done] = digest
    pending, built, cached, t0 = list(status), 0, 0, time.time()
    try:
        built, cached = _build_here(local, plan, base, cache, spec, file, refs, log, len(plan.datasets), t0)
        while pending:
            # with a timeout: a blocking ray.wait holds the main thread in C, where no signal
            # handler runs, so Ctrl-C would wait for every dataset to be built
            ready, pending = _wait(pending, num_returns=1, timeout=0.5)
            if ready:
                built, cached = _ready(ready[0], status, plan, file, built, cached, log, t0)
    except BaseException:  # Ctrl-C, or a build that failed: stop training reference models for nothing
        for other in pending:
            ray.cancel(other, force=True)
        raise
    # A second copy on the driver's node: if the node that built a dataset dies, Ray promotes
    # this copy instead of re-running the build, which could deadlock on a cluster whose CPUs
    # are all held by trial actors waiting for that very dataset.
    data_refs = [refs[d] for d in plan.datasets]
    while data_refs:
        _, data_refs = _wait(data_refs, num_returns=len(data_refs), fetch_local=True, timeout=0.5)
    return refs


def _build_here(digests, plan, base, cache, spec, file, refs, log, total, t0) -> tuple[int, int]:
    """Build ``digests`` in the driver (threads capped to a trial's CPUs, so the reference
    models' tasks keep theirs) and put each in the object store; returns (built, cached)."""
    built = cached = 0
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, min(threads, int(spec.resources.cpu))))
    try:
        for digest in digests:
            try:
                obj, info = load_or_build(plan.datasets[digest], base, cache)
            except (LevelUnreachable, ValueError) as e:
                raise SpecError(file, plan.where[digest], str(e)) from None
            refs[digest] = ray.put(obj)
            del obj
            built, cached = built + 1, cached + info["cached"]
            if info.get("rebuilt"):
                log(f"datasets: {info['rebuilt']}")
            log(f"datasets: {built}/{total} ready ({cached} from cache) {time.time() - t0:.0f}s")
    finally:
        torch.set_num_threads(threads)
    return built, cached


def _wait(refs, **kw):
    """``ray.wait``, but a signal that raised :class:`Interrupted` inside Ray's Cython wait
    comes out as that Interrupted, not as the ``SystemError("returned a result with an
    exception set")`` Cython wraps it in (seen in CI: a Ctrl-C during start-up exited 1)."""
    try:
        return ray.wait(refs, **kw)
    except SystemError as e:
        cause = e.__cause__ or e.__context__
        if isinstance(cause, Interrupted):
            raise cause from None
        raise


def _ready(done, status, plan, file, built, cached, log, t0) -> tuple[int, int]:
    """Count one finished build, or turn its failure into the error of the spec key behind it."""
    digest = status[done]
    try:
        info = ray.get(done)
    except ray.exceptions.RayTaskError as e:
        cause = e.cause if isinstance(e.cause, Exception) else e
        if isinstance(cause, (LevelUnreachable, ValueError)):
            raise SpecError(file, plan.where[digest], str(cause)) from None
        raise
    built, cached = built + 1, cached + info["cached"]
    if info.get("rebuilt"):
        log(f"datasets: {info['rebuilt']}")
    log(f"datasets: {built}/{len(plan.datasets)} ready ({cached} from cache) {time.time() - t0:.0f}s")
    return built, cached


def sweep_trainable(config: dict, spec: SweepSpec, refs: dict, models: str | None = None) -> None:
    """The Ray Tune trainable of ``run`` (wrapped with ``tune.with_parameters``): datasets
    come from the object store, zero-copy; weights kept under ``models`` when given."""
    trial = config["trial"]

    def save_for(t: dict):
        if models is None:
            return None
        from .saved_models import save_model

        def save(model, meta):
            shape = tuple(ray.get(refs["base"]).train.images.shape[1:])
            return save_model(model, models, t["trial_id"], arch=t["arch"], shape=shape,
                              num_classes=ray.get(refs["base"]).num_classes, meta=meta)  # fmt: skip

        return save

    fetch = lambda key: ray.get(refs[key])  # noqa: E731
    if "fused" not in trial:
        tune.report(execute_trial(trial, spec, fetch, tune.report, save=save_for(trial)))
        return
    outcomes = execute_fused(trial["fused"], spec, fetch, save_for)
    # the group's report: every member's outcome, and the best member's metrics for Progress
    best = max(outcomes.values(), key=lambda o: o.get("val_acc") if o.get("val_acc") == o.get("val_acc") else -1.0)
    tune.report(
        {**{k: v for k, v in best.items() if k.startswith("acc_")}, "fused_json": json.dumps(outcomes), "done": True}
    )


def keeps_models(spec: SweepSpec) -> bool:
    """``training.save_models``, or by default: every architecture has at most 5M parameters."""
    if spec.training.save_models is not None:
        return spec.training.save_models
    from .models import build_model
    from .models.base import count_parameters

    info = data.DATASETS.get(spec.dataset.name)
    c, h, w = info.shape
    return all(count_parameters(build_model(a, c, info.num_classes, (h, w))) <= 5_000_000 for a in spec.architectures)


def search_trainable(config: dict, spec: SweepSpec, refs: dict) -> None:
    """The Ray Tune trainable of ``search``: a proposed point, run as ``run`` runs a trial."""
    tune.report(run_point(config, spec, lambda key: ray.get(refs[key]), tune.report))


# --- the Tuner ----------------------------------------------------------------------------


def reuse_actors(spec: SweepSpec) -> bool:
    """Reusing trial actors saves seconds per trial (no new process, torch already
    imported), but Tune can hand a retried trial a cached actor whose node has just died,
    burning all its retries at once (seen in tests/test_cluster.py). So by default: reuse
    on a one-node Ray, where no node dies alone; fresh actors on a cluster, where trials are
    long and a lost node is the failure to survive."""
    if spec.execution.reuse_actors is not None:
        return spec.execution.reuse_actors
    return sum(1 for n in ray.nodes() if n.get("Alive")) == 1


def _asha(spec: SweepSpec, max_epochs: int) -> ASHAScheduler:
    es = spec.search.early_stopping
    return ASHAScheduler(
        time_attr="training_iteration",  # epoch k is report k; the final report comes after
        metric=es.metric,
        mode="max" if es.metric == "val_acc" else "min",
        # rungs only below the last epoch: a trial that trained to the end is not thrown
        # away at its last epoch, and past max_t a trial is never stopped for being last
        max_t=max(es.grace_epochs, max_epochs - 1),
        grace_period=es.grace_epochs,
        reduction_factor=es.reduction_factor,
        stop_last_trials=False,
    )


def make_tuner(
    spec: SweepSpec,
    refs: dict,
    out: Storage,
    progress: Progress,
    *,
    resume: bool = False,
    grid: list[dict] | None = None,
    searcher=None,
    max_epochs: int | None = None,
    partial: PartialResults | None = None,
    experiment: str = TUNE_DIR,
) -> tune.Tuner:
    """The Tuner of ``run`` (``grid``: the planned trial dicts, one Tune trial each) or of
    ``search`` (``searcher`` proposes ``spec.search.trials`` points; ASHA stops trials early
    when the spec asks, with rungs below ``max_epochs``). Trials are named and foldered by
    ``progress.name_of``. With ``resume`` the interrupted experiment in ``out`` is restored
    (it keeps the callbacks it was started with, unpickled from its state). ``experiment``:
    the Tune folder inside ``out`` (an extend's trials get a new one)."""
    search = grid is None
    _tune_env(search)
    trainable = tune.with_resources(
        tune.with_parameters(search_trainable, spec=spec, refs=refs)
        if search
        else tune.with_parameters(
            sweep_trainable, spec=spec, refs=refs, models=out.uri_of("models") if keeps_models(spec) else None
        ),  # fmt: skip
        {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu},
    )
    if resume:
        return tune.Tuner.restore(out.uri_of(TUNE_DIR), trainable, resume_unfinished=True, resume_errored=True)
    s = spec.search
    asha = search and s.early_stopping is not None
    return tune.Tuner(
        trainable,
        param_space=None if search else {"trial": tune.grid_search(grid)},
        tune_config=tune.TuneConfig(
            search_alg=searcher,
            scheduler=_asha(spec, max_epochs or spec.training.max_epochs) if asha else None,
            num_samples=s.trials if search else 1,
            max_concurrent_trials=(s.concurrency if search else None) or spec.execution.max_concurrent,
            reuse_actors=reuse_actors(spec),
            trial_name_creator=lambda t: progress.name_of(t.config),
            trial_dirname_creator=lambda t: progress.name_of(t.config),
        ),
        run_config=tune.RunConfig(
            name=experiment,
            storage_path=out.uri,
            failure_config=tune.FailureConfig(max_failures=spec.execution.max_failures),
            callbacks=[
                progress,
                JsonLoggerCallback(),
                SignalBridge(),
                *([partial] if partial else []),
                *tracker_callbacks(spec, progress.name_of),
            ],
            verbose=0,
        ),
    )


def is_up() -> bool:
    return ray.is_initialized()


def shutdown() -> None:
    ray.shutdown()


def tasks_as_done(fn, calls: list[tuple], cpu: float, gpu: float, shared):
    """``fn(*call, shared)`` for each call as one Ray task asking for ``cpu``/``gpu``, with
    ``shared`` put in the object store once (each worker reads it, none pickles its own);
    yields (index of the call, its result) as they finish."""
    task = ray.remote(num_cpus=cpu, num_gpus=gpu)(fn)
    ref = ray.put(shared)
    pending = {task.remote(*call, ref): i for i, call in enumerate(calls)}
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        i = pending.pop(ready[0])
        try:
            got = ray.get(ready[0])
        except ray.exceptions.RayTaskError as e:
            if isinstance(e.cause, UserError):  # a file the task cannot read: one line, as in the driver
                raise e.cause from None
            raise
        yield i, got
