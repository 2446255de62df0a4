"""``robust-ray run``: plan a sweep, place its datasets, one Tune trial per plan row, write Parquet.

The flow reads top to bottom in :func:`run_sweep`; every Ray call is in :mod:`.runtime`.
"""

from __future__ import annotations

import dataclasses
import json

from . import data
from .config import SweepSpec
from .errors import UserError
from .feasibility import check_levels
from .plan import Plan, make_plan, memory_note
from .results import history_rows, status_counts, trial_rows, write_results
from .runtime import (
    Execution, PartialResults, Progress, claim, finished_outcomes, fit, make_tuner, place, prologue, spec_json,
)  # fmt: skip
from .suites import suite_def


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



def suite_conditions(spec: SweepSpec) -> dict[str, dict]:
    """Per suite key: its type and its conditions (name, level, perturbation, parameters such
    as 002's p, r, a or 004's corruption and severity): what ``analyze`` needs beyond the
    ``condition`` column of metrics.parquet. Computed from the spec; nothing is built."""
    shape = data.DATASETS.get(spec.dataset.name).shape
    out = {}
    for key, ss in spec.suites.items():
        sdef = suite_def(spec.suite_type(key))
        if sdef.whitebox is not None:
            from .whitebox import conditions as whitebox_conditions

            conds = whitebox_conditions(sdef.whitebox, ss.options)
        else:
            conds = sdef.conditions(list(ss.levels or sdef.default_levels), shape)
        out[key] = {"type": sdef.name, "description": describe_suite(sdef, ss),
                    "conditions": [dataclasses.asdict(c) for c in conds]}  # fmt: skip
    return out


def run_sweep(spec: SweepSpec, run: Execution = Execution()) -> str:
    """Run ``spec`` end to end; return the output location holding the Parquet files.

    Everything that can be refused is refused before anything is written: the plan, the
    data, the cluster, the resources, the output location. The output is locked for the
    run (a second driver is refused); on Ctrl-C or SIGTERM (``run.signals``) finished trials
    are kept and the others written ``interrupted``.
    """
    if spec.design is None:
        raise UserError(f"{run.file or 'the spec'}: no design, only a search section: use `robust-ray search`")
    log, out = run.log, run.storage(spec)
    plan: Plan = make_plan(spec)
    if run.resource_check and run.address is None and (note := memory_note(spec, plan)) is not None:
        raise UserError(f"{run.file or 'the spec'}: {note}; lower per_class or the suites' n, or pass --no-resource-check")
    lock = claim(spec, run, out, "sweep")
    try:
        return _run_claimed(spec, run, out, plan)
    finally:
        lock.release()


def _run_claimed(spec: SweepSpec, run: Execution, out, plan: Plan) -> str:
    log = run.log

    def check(base: data.BaseDataset) -> None:
        check_levels(spec, plan, base, run.file)
        log(f"{spec.name}: {len(plan.trials)} trials, {len(plan.datasets)} datasets on {spec.dataset.name}")

    base = prologue(spec, run, out, "sweep", check=check)
    refs = place(plan, base, spec, run.file, log)
    out.write_bytes("sweep.json", spec_json(spec).encode())
    out.write_bytes("suites.json", json.dumps(suite_conditions(spec), indent=1).encode())
    plans, suites = [t.to_dict() for t in plan.trials], list(spec.suites)

    def write_partial(outcomes: dict, running: set) -> None:
        write_results(out, *trial_rows(spec.name, plans, outcomes, suites, running=running), history_rows(plans, outcomes))

    # the first suite that perturbs: the best-so-far of the progress lines
    metric = f"acc_{next((s for s in suites if spec.suite_type(s) not in ('clean', 'mnist-test')), suites[0])}"
    progress = Progress(len(plan.trials), metric, log, label_of(spec))
    PartialResults.SINKS[out.uri] = write_partial
    try:
        if not run.resume:  # a resumed sweep's files already hold what it had finished
            write_partial({}, set())
        tuner = make_tuner(spec, refs, out, progress, resume=run.resume, grid=plans, partial=PartialResults(out.uri))
        grid = fit(tuner, out, run.signals)
    finally:
        PartialResults.SINKS.pop(out.uri, None)

    outcomes = finished_outcomes(grid)
    trials, metrics = trial_rows(spec.name, plans, outcomes, suites, interrupted=run.interrupted)
    write_results(out, trials, metrics, history_rows(plans, outcomes))
    log(f"{spec.name}: {status_counts(trials)} -> {out.shown_of('trials.parquet')}, metrics.parquet, history.parquet")
    return out.uri


def describe_suite(sdef, ss) -> str:
    """What a suite is, in words a reader of the field expects (``white-box PGD-L∞ eps 0.1,
    0.2, 0.3, 10 steps, 1000 images``), not only its key."""
    if sdef.whitebox is None:
        return sdef.description
    from .whitebox import describe

    return describe(sdef.whitebox, ss.options)
