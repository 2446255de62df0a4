"""The Optuna study behind a search: its storage, its sampler, its directions and constraints.

Constraints are Optuna constraints, not a penalised objective: each ``min``/``max`` bound
becomes one value ``bound - metric`` (or ``metric - bound``), stored on the trial as the
list Optuna's samplers and optuna-dashboard both read (:func:`store_constraints`; the names
in the study's user attr ``constraint_names``); a trial is feasible when every value is <= 0.
The samplers (c-TPE, constrained GP, NSGA-II's constrained domination) use them to steer
away from infeasible levels, and ``study.best_trial(s)`` only ever returns feasible trials.

The Ray Tune searcher over the study is :class:`~robust_ray.search.searcher.StudySearch`.

Storage: an Optuna journal file (``JournalFileBackend``, file-locked appends, safe for
several writers on one filesystem; no SQLite), or any database URL Optuna takes.
"""

from __future__ import annotations

import logging
import math
import warnings

import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, GPSampler, NSGAIISampler, RandomSampler, TPESampler
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend

from ..config import Constraint, SearchSpec
from .distinct import DistinctSampler

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


CONSTRAINTS_ATTR = "constraints"  # the trial system attr optuna-dashboard 0.21 shows (a list)
CONSTRAINT_NAMES = "constraint_names"  # study user attr: the names of that list's values, in order


def constraint_names(constraints: list[Constraint]) -> list[str]:
    """The names of :func:`constraint_values`, in its order (the stored list's order)."""
    return list(constraint_values(constraints, {}))


def store_constraints(trial: optuna.Trial, values: dict[str, float]) -> None:
    """Set ``values`` (:func:`constraint_values`) on a running trial as one list.

    Optuna 5's ``set_constraint`` writes one ``constraints:<name>`` attr per value, which
    optuna-dashboard 0.21 does not read (an infeasible point there looks feasible); writing
    both formats would count every constraint twice in Optuna's merge of the two. The list
    is what Optuna's own ``constraints_func`` path writes, and both read it (Optuna names
    its values "0", "1", ...). Optuna has no public setter for a trial's system attrs.
    """
    trial.storage.set_trial_system_attr(trial._trial_id, CONSTRAINTS_ATTR, [float(v) for v in values.values()])


def create_study(s: SearchSpec, name: str, storage: BaseStorage, sampler: BaseSampler) -> optuna.Study:
    """The study, its objectives named by their metrics (optuna-dashboard shows
    ``acc_mnist-a``, not "Objective 0")."""
    study = optuna.create_study(storage=storage, sampler=sampler, study_name=name, directions=directions(s))
    with warnings.catch_warnings():  # set_metric_names is "experimental" in Optuna 5
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names([o.metric for o in s.objectives])
    if s.constraints:
        study.set_user_attr(CONSTRAINT_NAMES, constraint_names(s.constraints))
    return study


def study_exists(storage: BaseStorage, name: str) -> bool:
    return any(st.study_name == name for st in storage.get_all_studies())
