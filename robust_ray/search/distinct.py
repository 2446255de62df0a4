"""A sampler wrapper that never spends a trial on a point already tried.

A trial at given levels with a given seed composes the same training set and trains the
same model, so in a discrete space (stepped ranges, choices, whole numbers) a repeated point
is a wasted trial. Model-based samplers repeat points often there: they optimise their
acquisition over the continuous box and round onto the grid (GP-BO on a 25-level range with
8 trials repeats about one point per run). :class:`DistinctSampler` moves such a repeat to
the nearest point not yet tried (:data:`TRIED`), measured in the space scaled to the unit
box; random startup points too. Spaces that are not wholly discrete pass through. Once every
point is tried, :meth:`DistinctSampler.exhausted` says so and the searcher stops asking.
"""

from __future__ import annotations

import itertools

import numpy as np
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.samplers import BaseSampler
from optuna.trial import TrialState

MAX_POINTS = 200_000  # larger discrete spaces are left to the sampler
# A point is tried once a trial ran (or runs) there, whatever came of it: an early-stopped
# (PRUNED) point would train the same model to the same rung and be stopped again, and a
# FAIL failed with the same seed after Tune's retries (or diverged: a NaN objective), so it
# would fail again. Only trials that never trained are not tried (NEVER_RAN).
TRIED = (TrialState.COMPLETE, TrialState.RUNNING, TrialState.PRUNED, TrialState.FAIL)
# study user attribute: numbers of trials failed without training (see StudySearch.restore)
NEVER_RAN = "never_ran"


def grid_values(d: BaseDistribution) -> list | None:
    """Every value of a discrete distribution, or None when it is continuous."""
    if isinstance(d, CategoricalDistribution):
        return list(d.choices)
    if isinstance(d, IntDistribution) and not d.log:
        return list(range(d.low, d.high + 1, d.step))
    if isinstance(d, FloatDistribution) and d.step is not None:
        n = int(round((d.high - d.low) / d.step))
        return [float(round(d.low + k * d.step, 12)) for k in range(n + 1)]
    return None


def point_key(values) -> tuple:
    """A point as a hashable key, floats rounded so 0.1 * 3 and 0.3 are one point."""
    return tuple(round(v, 9) if isinstance(v, float) else v for v in values)


def tried_points(study, names: list[str], skip: int | None = None) -> set[tuple]:
    """:func:`point_key` of every point tried in ``study`` (all but trial number ``skip``)."""
    never = set(study.user_attrs.get(NEVER_RAN, ()))
    return {
        point_key(t.params.get(n) for n in names)
        for t in study.get_trials(deepcopy=False, states=TRIED)
        if t.number != skip and t.number not in never
    }


def _coords(d: BaseDistribution, values: list) -> np.ndarray:
    if isinstance(d, CategoricalDistribution):
        return np.asarray([d.choices.index(v) for v in values], float)  # compared by identity only
    return (np.asarray(values, float) - d.low) / (d.high - d.low)


def nearest_untried(params: dict, space: dict[str, BaseDistribution], tried: set[tuple]) -> dict | None:
    """The untried grid point closest to ``params`` (None: no grid, too large, or all
    tried); ``tried`` holds :func:`point_key` of the points tried, in ``space``'s order."""
    names = list(space)
    values = [grid_values(space[n]) for n in names]
    if any(v is None for v in values) or np.prod([len(v) for v in values], dtype=float) > MAX_POINTS:
        return None
    points = [p for p in itertools.product(*values) if point_key(p) not in tried]
    if not points:
        return None
    dist = np.zeros(len(points))
    for i, n in enumerate(names):
        col = _coords(space[n], [p[i] for p in points])
        here = _coords(space[n], [params[n]])[0]
        if isinstance(space[n], CategoricalDistribution):
            dist += col != here
        else:
            dist += (col - here) ** 2
    return dict(zip(names, points[int(np.argmin(dist))]))


class DistinctSampler(BaseSampler):
    """``base``, except that a point already tried is replaced by the nearest untried one.

    Given the search ``space`` and it is wholly discrete, the wrapper samples every point
    jointly: ``base``'s model proposes what it can (nothing during its random startup) and
    ``base`` draws the rest independently, as it would have; the whole point is then checked.
    Otherwise it is ``base`` unchanged.
    """

    def __init__(self, base: BaseSampler, space: dict[str, BaseDistribution] | None = None):
        self.base = base
        discrete = space and all(grid_values(d) is not None for d in space.values())
        self.space = dict(space) if discrete else None

    def infer_relative_search_space(self, study, trial):
        return dict(self.space) if self.space is not None else self.base.infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space):
        if self.space is None:
            return self.base.sample_relative(study, trial, search_space)
        inner = self.base.infer_relative_search_space(study, trial)
        params = dict(self.base.sample_relative(study, trial, inner)) if inner else {}
        for name, dist in search_space.items():
            if name not in params:
                params[name] = self.base.sample_independent(study, trial, name, dist)
        tried = tried_points(study, list(search_space), skip=trial.number)
        if point_key(params[n] for n in search_space) not in tried:
            return params
        return nearest_untried(params, search_space, tried) or params  # all tried: see exhausted()

    def exhausted(self, study) -> bool:
        """Whether every point of a discrete space (of at most MAX_POINTS) is tried, so a new
        trial could only repeat one."""
        if self.space is None:
            return False
        values = [grid_values(d) for d in self.space.values()]
        if np.prod([len(v) for v in values], dtype=float) > MAX_POINTS:
            return False
        tried = tried_points(study, list(self.space))
        return all(point_key(p) in tried for p in itertools.product(*values))

    def sample_independent(self, study, trial, param_name, param_distribution):
        return self.base.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study, trial):
        self.base.before_trial(study, trial)

    def after_trial(self, study, trial, state, values):
        self.base.after_trial(study, trial, state, values)

    def reseed_rng(self):
        self.base.reseed_rng()
