"""The Optuna study behind a search: its storage, its sampler, and the Ray Tune searcher
that asks it for points and tells it what each trial reached.

Constraints are Optuna constraints, not a penalised objective: each ``min``/``max`` bound
becomes one value ``bound - metric`` (or ``metric - bound``) set on the trial with
:meth:`optuna.trial.Trial.set_constraint`; a trial is feasible when every value is <= 0.
The samplers (c-TPE, constrained GP, NSGA-II's constrained domination) use them to steer
away from infeasible levels, and ``study.best_trial(s)`` only ever returns feasible trials.

Storage: an Optuna journal file (``JournalFileBackend``, file-locked appends, safe for
several writers on one filesystem; no SQLite), or any database URL Optuna takes.
"""

from __future__ import annotations

import json
import logging
import math
import warnings

import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, GPSampler, NSGAIISampler, RandomSampler, TPESampler
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState
from ray.tune.search import Searcher
from ray.tune.search.optuna import OptunaSearch

from ..config import Constraint, SearchSpec
from .distinct import NEVER_RAN, DistinctSampler

FINISHED_DIR = "finished"  # per-trial final reports, written before the study is told
NUMBER = "optuna_number"  # key of the Optuna trial number in a Tune trial's config
logger = logging.getLogger(__name__)


def trial_id(number: int) -> str:
    """A search trial's id (its folder name and ``trial_id`` column): the Optuna number."""
    return f"t{int(number):04d}"


def startup_trials(s: SearchSpec) -> int:
    """Random points before the model steers: a quarter of the budget, 2 to 10."""
    return s.startup_trials if s.startup_trials is not None else min(10, max(2, s.trials // 4))


def make_sampler(s: SearchSpec, space: dict[str, BaseDistribution]) -> BaseSampler:
    """The spec's sampler over ``space``, never repeating a point of a discrete space
    (:mod:`.distinct`)."""
    n0 = startup_trials(s)
    if s.sampler == "tpe":
        # multivariate: mixtures of factors interact; constant liar: points proposed while
        # others run are pushed away from the running ones (parallel trials)
        base = TPESampler(seed=s.seed, n_startup_trials=n0, multivariate=True, constant_liar=True)
    elif s.sampler == "gp":
        # a point's trial is seeded, so it always gives the same value; warm-start trials
        # may hold several seeds at one point, which a noiseless GP cannot fit
        with warnings.catch_warnings():  # deterministic_objective is "experimental" in Optuna 5
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            base = GPSampler(seed=s.seed, n_startup_trials=n0, deterministic_objective=not s.warm_start)
    elif s.sampler == "nsga2":
        base = NSGAIISampler(seed=s.seed, population_size=max(2, n0))
    else:
        base = RandomSampler(seed=s.seed)
    return DistinctSampler(base, space)


def open_storage(where: str) -> BaseStorage:
    """A database URL (``postgresql://...``) or a journal file path."""
    if "://" in where:
        return RDBStorage(where)
    return JournalStorage(JournalFileBackend(where))


def directions(s: SearchSpec) -> list[str]:
    return ["maximize" if o.mode == "max" else "minimize" for o in s.objectives]


def constraint_values(constraints: list[Constraint], metrics: dict) -> dict[str, float]:
    """Optuna constraint values (feasible when <= 0) of one trial's metrics. A metric the
    trial did not report (NaN) violates by 1, the whole range of an accuracy (every metric
    a constraint may name is one)."""
    out = {}
    for c in constraints:
        v = metrics.get(c.metric)
        v = float("nan") if v is None else float(v)
        if c.min is not None:
            out[f"{c.metric}>={c.min:g}"] = 1.0 if math.isnan(v) else c.min - v
        if c.max is not None:
            out[f"{c.metric}<={c.max:g}"] = 1.0 if math.isnan(v) else v - c.max
    return out


def create_study(s: SearchSpec, name: str, storage: BaseStorage, sampler: BaseSampler) -> optuna.Study:
    return optuna.create_study(storage=storage, sampler=sampler, study_name=name, directions=directions(s))


def study_exists(storage: BaseStorage, name: str) -> bool:
    return any(st.study_name == name for st in storage.get_all_studies())


class StudySearch(OptunaSearch):
    """Ray Tune's ``OptunaSearch`` over a study created beforehand, with what a search needs:

    - each Tune trial's config carries its Optuna trial number (``optuna_number``), which
      names the trial, its folder and its row in trials.parquet;
    - Optuna is told only the final result (per-epoch results carry no objective; early
      stopping is ASHA's job, not an Optuna pruner's), with the constraint values;
    - a trial stopped early (ASHA) is PRUNED and a failed one FAIL, whatever the number of
      objectives;
    - once every point of a discrete space is tried (warm-start trials occupy points too),
      it answers ``FINISHED``: Tune runs no more trials, rather than retrain a point;
    - on restore (``--resume``), study trials left RUNNING that no Tune trial owns (asked
      after Tune's last checkpoint) are failed, so they do not hold the sampler back, and
      marked as never run, so their points are still untried;
    - with ``record`` (an output folder), each COMPLETE trial's final report is written to
      ``finished/<trial>.json`` there before the study is told: Tune saves its experiment
      every few seconds and the journal at once, so a driver killed in between leaves a
      trial the study counts and Tune's restored state does not know; ``--resume`` reads
      its row back from that file (:func:`~robust_ray.search.run.orphans`).
    """

    def __init__(
        self, space, s: SearchSpec, sampler: BaseSampler, study_name: str, storage: BaseStorage, record: str | None = None
    ):
        metric = [o.metric for o in s.objectives]
        mode = [o.mode for o in s.objectives]
        super().__init__(
            space=space,
            metric=metric if len(metric) > 1 else metric[0],
            mode=mode if len(mode) > 1 else mode[0],
            sampler=sampler,
            study_name=study_name,
            storage=storage,
        )
        self._objectives = metric
        self._constraints = list(s.constraints)
        self._record = record  # a URI, not a Storage: the searcher is pickled into Tune's checkpoints

    def suggest(self, trial_id: str):
        sampler = self._ot_study.sampler if self._ot_study is not None else None
        if isinstance(sampler, DistinctSampler) and sampler.exhausted(self._ot_study):
            return Searcher.FINISHED
        params = super().suggest(trial_id)
        if params is None:
            return None
        return {**params, NUMBER: self._ot_trials[trial_id].number}

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        pass

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id in self._completed_trials or trial_id not in self._ot_trials:
            return
        ot_trial = self._ot_trials[trial_id]
        values = [(result or {}).get(m) for m in self._objectives]
        if error:
            state, told = TrialState.FAIL, None
        elif any(v is None for v in values):  # stopped before its final report
            state, told = TrialState.PRUNED, None
        elif any(math.isnan(float(v)) for v in values):
            state, told = TrialState.FAIL, None
        else:
            state, told = TrialState.COMPLETE, [float(v) for v in values]
            for key, value in constraint_values(self._constraints, result).items():
                ot_trial.set_constraint(key, value)
            if self._record is not None:
                self._write_record(ot_trial, result)
        try:
            self._ot_study.tell(ot_trial, told if told is None or len(told) > 1 else told[0], state=state)
        except (RuntimeError, ValueError) as e:  # told already, before an interruption
            logger.warning("optuna trial %s: %s", ot_trial.number, e)
        self._completed_trials.add(trial_id)

    def _write_record(self, ot_trial: optuna.Trial, result: dict) -> None:
        from ..storage import Storage

        config = {**ot_trial.params, NUMBER: ot_trial.number}
        metrics = {k: v for k, v in result.items() if not k.startswith("config/")}
        body = json.dumps({"config": config, "metrics": metrics}, default=str).encode()
        Storage(self._record).write_bytes(f"{FINISHED_DIR}/{trial_id(ot_trial.number)}.json", body)

    def restore(self, checkpoint_path: str) -> None:
        super().restore(checkpoint_path)
        owned = {t.number for t in self._ot_trials.values()}
        for t in self._ot_study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if t.number not in owned:
                self._ot_study._storage.set_trial_user_attr(t._trial_id, NEVER_RAN, True)
                self._ot_study.tell(t.number, state=TrialState.FAIL)
