"""The Ray Tune searcher of a search: asks the Optuna study for points, tells it what each
trial reached. A public :class:`ray.tune.search.Searcher` over Optuna's public ask-and-tell
interface, so no private attribute of Ray's ``OptunaSearch`` or of Optuna is relied on."""

from __future__ import annotations

import json
import logging
import math
import pickle

import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.storages import BaseStorage
from optuna.trial import TrialState
from ray.tune.search import Searcher

from ..config import SearchSpec
from .distinct import NEVER_RAN, DistinctSampler
from .study import FINISHED_DIR, NUMBER, constraint_values, directions, store_constraints, trial_id
from .study import trial_id as our_trial_id  # on_trial_complete's own trial_id is Tune's

logger = logging.getLogger(__name__)


class StudySearch(Searcher):
    """A Tune searcher over a study created beforehand (:func:`~.study.create_study`):

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
        self,
        space: dict[str, BaseDistribution],
        s: SearchSpec,
        sampler: BaseSampler,
        study_name: str,
        storage: BaseStorage,
        record: str | None = None,
    ):
        metric = [o.metric for o in s.objectives]
        mode = [o.mode for o in s.objectives]
        super().__init__(metric=metric if len(metric) > 1 else metric[0], mode=mode if len(mode) > 1 else mode[0])
        self.space = space
        self.study = optuna.create_study(
            storage=storage, sampler=sampler, study_name=study_name, directions=directions(s), load_if_exists=True
        )
        self.objectives = metric
        self.constraints = list(s.constraints)
        self.record = record  # a URI, not a Storage: the searcher is pickled into Tune's checkpoints
        self.asked: dict[str, optuna.Trial] = {}  # Tune trial id -> the Optuna trial it runs
        self.told: set[str] = set()

    def suggest(self, trial_id: str):
        sampler = self.study.sampler
        if isinstance(sampler, DistinctSampler) and sampler.exhausted(self.study):
            return Searcher.FINISHED
        if trial_id not in self.asked:
            self.asked[trial_id] = self.study.ask(fixed_distributions=self.space)
        ot_trial = self.asked[trial_id]
        return {**ot_trial.params, NUMBER: ot_trial.number}

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        pass

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id in self.told or trial_id not in self.asked:
            return
        ot_trial = self.asked[trial_id]
        values = [(result or {}).get(m) for m in self.objectives]
        if error:
            state, told = TrialState.FAIL, None
        elif any(v is None for v in values):  # stopped before its final report
            state, told = TrialState.PRUNED, None
        elif any(math.isnan(float(v)) for v in values):
            state, told = TrialState.FAIL, None
        else:
            state, told = TrialState.COMPLETE, [float(v) for v in values]
            if self.constraints:
                store_constraints(ot_trial, constraint_values(self.constraints, result))
            # what optuna-dashboard shows beside a trial: our id, every accuracy, the levels
            ot_trial.set_user_attr("trial_id", our_trial_id(ot_trial.number))
            ot_trial.set_user_attr(
                "levels", {k: v for k, v in ot_trial.params.items() if not k.startswith("training.")}
            )
            for key, value in (result or {}).items():
                if key.startswith("acc_") and isinstance(value, (int, float)):
                    ot_trial.set_user_attr(key, float(value))
            if self.record is not None:
                self._write_record(ot_trial, result)
        try:
            self.study.tell(ot_trial, told if told is None or len(told) > 1 else told[0], state=state)
        except (RuntimeError, ValueError) as e:  # told already, before an interruption
            logger.warning("optuna trial %s: %s", ot_trial.number, e)
        self.told.add(trial_id)

    def _write_record(self, ot_trial: optuna.Trial, result: dict) -> None:
        from ..storage import Storage

        config = {**ot_trial.params, NUMBER: ot_trial.number}
        metrics = {k: v for k, v in result.items() if not k.startswith("config/")}
        body = json.dumps({"config": config, "metrics": metrics}, default=str).encode()
        Storage(self.record).write_bytes(f"{FINISHED_DIR}/{trial_id(ot_trial.number)}.json", body)

    def save(self, checkpoint_path: str) -> None:
        """Tune's checkpoint of the searcher: its state, the study (storage and sampler) with it."""
        with open(checkpoint_path, "wb") as f:
            pickle.dump(self.__dict__.copy(), f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            self.__dict__.update(pickle.load(f))
        owned = {t.number for t in self.asked.values()}
        orphans = [
            t.number
            for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            if t.number not in owned
        ]
        if orphans:
            never = self.study.user_attrs.get(NEVER_RAN, [])
            self.study.set_user_attr(NEVER_RAN, sorted({*never, *orphans}))
            for number in orphans:
                self.study.tell(number, state=TrialState.FAIL)
