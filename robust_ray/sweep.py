"""``robust-ray run``: plan a sweep, place its datasets, one Tune trial per plan row, write Parquet.

The flow reads top to bottom in :func:`run_sweep`; every Ray call is in :mod:`.runtime`.
"""

from __future__ import annotations

import json

from . import data
from .config import SweepSpec
from .errors import SpecError, UserError
from .feasibility import check_levels
from .fused import fuse_groups
from .lock import OutputLock
from .plan import Plan, make_plan, memory_note
from .results import (
    SUITES_FILE,
    evaluated_suites,
    history_rows,
    listed_suites,
    status_counts,
    trial_rows,
    write_results,
)
from .runtime import (
    Execution,
    PartialResults,
    Progress,
    claim,
    finished_outcomes,
    fit,
    make_tuner,
    place,
    prologue,
    spec_json,
)  # fmt: skip
from .suite_table import suite_conditions


def trial_label(trial: dict, parts: tuple[str, ...] = ()) -> str:
    """A planned trial as people name it: ``t0003 gaussian_l2=6`` (the factors applied, not
    those at their "not applied" level; ``clean`` when none is), then ``parts`` of
    ``arch``, ``recipe``, ``seed``."""
    from .factors import factor_def

    if "fused" in trial:  # a fused group (execution.fuse): its members
        ids = [m["trial_id"] for m in trial["fused"]]
        return f"{trial['trial_id']} ({len(ids)} fused: {ids[0]}..{ids[-1]})"
    levels = " ".join(f"{f}={v:g}" for f, v in (trial.get("levels") or {}).items() if not factor_def(f).is_identity(v))
    extra = " ".join(f"{trial[p]}" if p != "seed" else f"seed {trial[p]}" for p in parts if p in trial)
    return " ".join(x for x in (trial.get("trial_id", "?"), levels or "clean", extra) if x)


def label_of(spec: SweepSpec):
    """:func:`trial_label` naming the architecture, recipe and seed where the sweep varies them."""
    parts = tuple(p for p, n in (("arch", len(spec.architectures)), ("recipe", len(spec.recipe_list())),
                                 ("seed", len(spec.seeds))) if n > 1)  # fmt: skip
    return lambda trial: trial_label(trial, parts)


def run_sweep(spec: SweepSpec, run: Execution = Execution()) -> str:
    """Run ``spec`` end to end; return the output location holding the Parquet files.

    Everything that can be refused is refused before anything is written: the plan, the
    data, the cluster, the resources, the output location. The output is locked for the
    run (a second driver is refused); on Ctrl-C or SIGTERM (``run.signals``) finished trials
    are kept and the others written ``interrupted``.
    """
    if spec.design is None:
        raise UserError(f"{run.file or 'the spec'}: no design, only a search section: use `robust-ray search`")
    out = run.storage(spec)
    plan: Plan = make_plan(spec)
    if run.resource_check and run.address is None and (note := memory_note(spec, plan)) is not None:
        raise UserError(
            f"{run.file or 'the spec'}: {note}; lower per_class or the suites' n, or pass --no-resource-check"
        )
    if run.extend:
        if run.resume:
            raise UserError("--extend and --resume: give one (an interrupted extend continues with --extend again)")
        lock = OutputLock(out, spec.name).acquire()
        try:
            return _extend_claimed(spec, run, out, plan)
        finally:
            lock.release()
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
    refs = place(plan, base, spec, run.file, log, in_driver=run.address is None)
    out.write_bytes("sweep.json", spec_json(spec).encode())
    out.write_bytes(SUITES_FILE, json.dumps(suite_conditions(spec), indent=1).encode())
    plans = [t.to_dict() for t in plan.trials]
    trials, metrics, history = _train(spec, run, out, refs, plans, lambda t, m, h: (t, m, h))
    write_results(out, trials, metrics, history)
    log(f"{spec.name}: {status_counts(trials)} -> {out.shown_of('trials.parquet')}, metrics.parquet, history.parquet")
    _summary(spec, run, out, trials, metrics)
    return out.uri


def _summary(spec: SweepSpec, run: Execution, out, trials, metrics) -> None:
    """The five lines a sweep ends with (issue 15): best and worst condition per suite, and
    the analyze command; none after a signal (the resume line comes instead)."""
    if run.interrupted:
        return
    from .analysis.summary import run_summary

    baselines = {f: fs.baseline for f, fs in spec.design.factors.items()}
    run.log(run_summary(trials, metrics, out.shown, list(spec.design.factors), baselines))


def _train(spec: SweepSpec, run: Execution, out, refs: dict, plans: list[dict], combine, experiment: str = "tune"):
    """Train ``plans`` in one Tune experiment; the rows of the three files, written as
    trials finish (``combine(trials, metrics, history)`` adds what the folder holds besides
    them) and returned at the end, uncombined, for the caller's final write."""
    log, suites = run.log, list(spec.suites)

    def write_partial(outcomes: dict, running: set) -> None:
        write_results(out, *combine(*trial_rows(spec.name, plans, outcomes, suites, running=running),
                                    history_rows(plans, outcomes)))  # fmt: skip

    # the first suite that perturbs: the best-so-far of the progress lines
    metric = f"acc_{next((s for s in suites if spec.suite_type(s) not in ('clean', 'mnist-test')), suites[0])}"
    grid = fuse_groups(plans, spec)  # execution.fuse: K trials per Tune trial where they can be
    if len(grid) < len(plans):
        log(f"{spec.name}: {len(plans)} trials in {len(grid)} Tune trials (execution.fuse: {spec.execution.fuse})")
    progress = Progress(len(grid), metric, log, label_of(spec))
    PartialResults.SINKS[out.uri] = write_partial
    try:
        if not run.resume:  # a resumed sweep's files already hold what it had finished
            write_partial({}, set())
        tuner = make_tuner(spec, refs, out, progress, resume=run.resume, grid=grid, partial=PartialResults(out.uri),
                           experiment=experiment)  # fmt: skip
        results = fit(tuner, out, run.signals)
    finally:
        PartialResults.SINKS.pop(out.uri, None)
    outcomes = finished_outcomes(results)
    return (*trial_rows(spec.name, plans, outcomes, suites, interrupted=run.interrupted), history_rows(plans, outcomes))


def _extend_claimed(spec: SweepSpec, run: Execution, out, plan: Plan) -> str:
    """``--extend`` (:mod:`.extend`): train what the folder lacks, evaluate kept models on
    the suites they lack, keep every other row."""
    from .extend import merge, next_experiment, plan_extension, read_previous, record
    from .reevaluate import evaluate_kept

    log = run.log
    old_spec, old_trials, old_metrics, old_history = read_previous(out, spec, run.file)
    new_suites = spec.model_dump(mode="json")["suites"]
    listed = listed_suites(out)
    stored = evaluated_suites(listed, old_spec.get("suites"))
    for name, ss in new_suites.items():
        if name in stored and stored[name] != ss:
            raise SpecError(run.file, f"suites.{name}", f"differs from the suite {name!r} {out.shown} was evaluated on; "
                            "an extend keeps what a suite's name meant: give the changed suite a new name")  # fmt: skip
    ext = plan_extension(spec, plan, old_trials)
    sub = plan.subset(list(ext.train))
    log(ext.summary())

    def check(base: data.BaseDataset) -> None:
        check_levels(spec, sub, base, run.file)

    base = prologue(spec, run, out, "sweep", check=check)
    old = (old_trials, old_metrics, old_history)
    if ext.train:
        refs = place(sub, base, spec, run.file, log, in_driver=run.address is None)
        experiment = next_experiment(out)
        log(f"{spec.name}: training {len(ext.train)} trial(s) in {out.shown_of(experiment)}")
        fresh = _train(spec, run, out, refs, [t.to_dict() for t in ext.train],
                       lambda t, m, h: merge(*old, t, m, h, ext, spec.name), experiment)  # fmt: skip
        trials, metrics, history = merge(*old, *fresh, ext, spec.name)
    else:
        experiment = None
        trials, metrics, history = merge(*old, old_trials.iloc[:0], old_metrics.iloc[:0], None, ext, spec.name)
    write_results(out, trials, metrics, history)  # what trained is safe before the evaluations start
    if not run.interrupted:
        for suite, ids in ext.evaluate.items():
            want = {suite: spec.suites[suite].model_dump(mode="json", exclude_defaults=True)}
            trials, metrics, _ = evaluate_kept(trials, metrics, spec, want, base, out.uri_of("models"), ids, log)
    write_results(out, trials, metrics, history)
    out.write_bytes(SUITES_FILE, json.dumps({**listed, **suite_conditions(spec)}, indent=1).encode())
    record(out, old_spec, old_trials, spec_json(spec), experiment)
    log(
        f"{spec.name}: {status_counts(trials[trials['in_spec']])} in the spec"
        f"{f', {int((~trials.in_spec).sum())} earlier' if (~trials['in_spec']).any() else ''} -> {out.shown_of('trials.parquet')}"
    )
    _summary(
        spec,
        run,
        out,
        trials[trials["in_spec"]],
        metrics[metrics["trial_id"].isin(trials.loc[trials["in_spec"], "trial_id"])],
    )
    return out.uri
