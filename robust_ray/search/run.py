"""Run a search end to end: check, build the level-independent datasets, let Optuna propose
points through a Ray Tune searcher (:class:`~.searcher.StudySearch`), write the same Parquet
files as ``run``.

Output folder: trials.parquet and metrics.parquet (the results contract, plus
``optuna_number``, any searched training settings and recipe options as ``training.<name>``
and ``training.recipe_options.<key>`` columns, and
``feasible`` when there are constraints), sweep.json (the spec, with a ``list`` design of the
points tried, so ``analyze`` reads it as it reads a sweep), suites.json, study.csv (every
study trial, warm-start ones included), best.json (one objective) or pareto.csv and
pareto.png (several), study.journal (the Optuna study), finished/ (each trial's final
report, as the driver saw it) and tune/ (Ray Tune's experiment).

``--resume`` restores Tune's experiment (``Tuner.restore`` on OUTPUT/tune): the trials it
had finished are kept, unfinished ones rerun (a trial that finished after Tune's last save
is not rerun: the study already counts it, and its row is read back from finished/), and the searcher comes back from Tune's
checkpoint of it, holding the study, whose trials are read back from the journal, and the
sampler's state; the remaining budget is then proposed by the same study. The journal is
the record of the study: ``optuna.load_study(study_name=NAME,
storage=JournalStorage(JournalFileBackend("OUTPUT/study.journal")))`` opens it (for
optuna-dashboard too). Resume from the folder the search was started in: the searcher
keeps the journal's path.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import NamedTuple

import optuna
import pandas as pd
from optuna.trial import TrialState

from ..config import SweepSpec
from ..errors import SpecError, UserError
from ..results import SUITES_FILE, history_rows, status_counts, trial_rows, write_results
from ..runtime import (
    Execution,
    Progress,
    claim,
    error_text,
    fit,
    make_tuner,
    place,
    prologue,
    search_trial_id,
    with_history,
)
from ..storage import Storage
from ..suite_table import suite_conditions
from .front import best_trial, pareto_table, plot_pareto, study_table
from .searcher import StudySearch
from .space import distributions, factor_spec, is_training, searched_factors, shared_datasets
from .study import (
    FINISHED_DIR,
    NUMBER,
    create_study,
    make_sampler,
    open_storage,
    startup_trials,
    study_exists,
    trial_id,
)
from .warm import warm_start

STUDY_FILE = "study.journal"


def search_label(config: dict) -> str:
    """A searched trial as people name it: ``t0003 fgsm_l2=6.5 training.lr=0.001``."""
    point = " ".join(f"{k}={v:g}" for k, v in config.items() if k != NUMBER and isinstance(v, (int, float)))
    return f"{trial_id(config[NUMBER])} {point}".strip()


def study_location(spec: SweepSpec, out: Storage, file: str | None) -> str:
    if spec.search.storage:
        return spec.search.storage
    if "://" in out.uri:
        raise SpecError(
            file, "search.storage",
            f"the output {out.uri} is not a local folder: give the Optuna study a journal file on a "
            "filesystem the driver can lock (or a database URL)",
        )  # fmt: skip
    return out.path(STUDY_FILE)


def results_spec(spec: SweepSpec, rows: list[dict]) -> dict:
    """sweep.json of a search: the spec, its design a ``list`` of the points tried."""
    d = spec.model_dump(mode="json")
    factors = {}
    for f in searched_factors(spec):
        fs = factor_spec(spec.search.space[f]).model_dump(mode="json")
        fs["levels"] = sorted({r[f] for r in rows})
        factors[f] = fs
    d["design"] = {"type": "list", "factors": factors, "rows": rows}
    return d


def _without_design(d: dict) -> dict:
    return {k: v for k, v in d.items() if k != "design"}


def describe(spec: SweepSpec) -> str:
    """What ``validate`` prints for a search section."""
    s = spec.search
    lines = [
        f"  search: {s.trials} trials, sampler {s.sampler} ({startup_trials(s)} random first), "
        f"concurrency {s.concurrency or 'as resources allow'}, {spec.architectures[0]} seed {spec.seeds[0]}"
    ]
    for name, dist in distributions(spec).items():
        lines.append(f"    {name:<24} {dist}")
    for o in s.objectives:
        lines.append(f"    objective: {o.mode}imise {o.metric}")
    for c in s.constraints:
        lo = f"{c.min:g} <= " if c.min is not None else ""
        hi = f" <= {c.max:g}" if c.max is not None else ""
        lines.append(f"    constraint: {lo}{c.metric}{hi}")
    if s.early_stopping:
        es = s.early_stopping
        lines.append(
            f"    early stopping: ASHA on {es.metric}, grace {es.grace_epochs} epochs, reduction {es.reduction_factor:g}"
        )
    for folder in s.warm_start:
        lines.append(f"    warm start from {folder}")
    shared = shared_datasets(spec)
    lines.append(f"    built before the search: {', '.join(shared.where.values())}")
    return "\n".join(lines)


def _outcomes(spec: SweepSpec, grid, interrupted: bool = False) -> tuple[list[dict], dict[str, dict], dict[str, dict]]:
    """Planned-trial dicts, outcomes and Optuna parameters of every Tune trial, by number.
    After Ctrl-C, a trial without its final report is ``interrupted`` (no metrics); else it
    was stopped by ASHA."""
    plans, outcomes, params = [], {}, {}
    for r in sorted(grid, key=lambda r: r.config[NUMBER]):
        tid = trial_id(r.config[NUMBER])
        p = {k: v for k, v in r.config.items() if k != NUMBER}
        params[tid] = {NUMBER: int(r.config[NUMBER]), **{k: v for k, v in p.items() if is_training(k)}}
        levels = {f: float(p[f]) for f in searched_factors(spec)}
        plans.append({"trial_id": tid, "arch": spec.architectures[0], "seed": spec.seeds[0], "levels": levels})
        m = with_history(r) if getattr(r, "metrics_dataframe", None) is not None else dict(r.metrics or {})
        if r.error is not None:
            outcomes[tid] = {**m, "status": "failed", "error": error_text(r)}
        elif "metrics_json" not in m and interrupted:
            outcomes[tid] = {"status": "interrupted"}
        elif "metrics_json" not in m:  # ASHA stopped it before its final report
            outcomes[tid] = {**m, "status": "stopped", "epochs": m.get("epoch"),
                             "error": f"stopped early (ASHA) after epoch {m.get('epoch')}"}  # fmt: skip
        else:
            outcomes[tid] = m
    return plans, outcomes, params


class _Orphan(NamedTuple):
    """A finished trial Tune's restored experiment does not know (the fields of a Tune
    ``Result`` that :func:`_outcomes` reads)."""

    config: dict
    metrics: dict
    error: None = None


def orphans(out: Storage, study: optuna.Study, known: set[int], log=print) -> list[_Orphan]:
    """Study trials that finished after Tune's last experiment save and before the driver
    died: the study counts them, so ``--resume`` does not rerun them and the sampler has
    learned from them; their final reports, which :class:`StudySearch` wrote to
    ``finished/`` before telling the study, give them their rows in the results."""
    found = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if t.number in known or "warm_start" in t.user_attrs:
            continue
        name = f"{FINISHED_DIR}/{trial_id(t.number)}.json"
        if not out.exists(name):
            log(f"optuna trial {t.number} finished after Tune's last save and {out.shown_of(name)} is missing: "
                "it is in study.csv only")  # fmt: skip
            continue
        record = json.loads(out.read_text(name))
        found.append(_Orphan(record["config"], record["metrics"]))
    return found


def _write_study(out: Storage, study: optuna.Study, spec: SweepSpec, log) -> None:
    s = spec.search
    table = study_table(study, s)
    out.write_bytes("study.csv", table.to_csv(index=False).encode())
    if len(s.objectives) == 1:
        best = best_trial(study, s)
        out.write_bytes("best.json", json.dumps(best, indent=1, default=str).encode())
        if best is None:
            log(f"{spec.name}: no feasible trial finished")
        else:
            at = ", ".join(f"{k}={best[k]:g}" for k in s.space)
            log(
                f"{spec.name}: best {s.objectives[0].metric}={best[s.objectives[0].metric]:.4f} at {at} ({best['trial_id']})"
            )
        return
    front = pareto_table(study, s)
    out.write_bytes("pareto.csv", front.to_csv(index=False).encode())
    with tempfile.TemporaryDirectory() as tmp:
        png = Path(tmp) / "pareto.png"
        plot_pareto(table, front, s, str(png))
        out.write_bytes("pareto.png", png.read_bytes())
    log(f"{spec.name}: Pareto front of {len(front)} trial(s) -> {out.shown_of('pareto.csv')}, pareto.png")


def run_search(spec: SweepSpec, run: Execution = Execution()) -> str:
    """Run the search of ``spec``; return the output location. As with ``run``, everything
    that can be refused (spec, warm-start folders, data, cluster, output) is refused before
    any trial starts, the output is locked for the run, and Ctrl-C/SIGTERM (``run.signals``)
    keep the finished trials."""
    if spec.search is None:
        raise UserError(f"{run.file or 'the spec'}: no search section (`robust-ray run` runs its design)")
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our progress lines say what matters
    out = run.storage(spec)
    where = study_location(spec, out, run.file)
    lock = claim(spec, run, out, "search", same=_without_design)  # the design lists points tried
    try:
        return _search_claimed(spec, run, out, where)
    finally:
        lock.release()


def _search_claimed(spec: SweepSpec, run: Execution, out: Storage, where: str) -> str:
    s, log, file, resume = spec.search, run.log, run.file, run.resume
    dists = distributions(spec)
    warm = None

    def check(base) -> None:
        nonlocal warm
        if not resume and not s.storage and out.exists(STUDY_FILE):
            raise UserError(f"{out.shown} already holds a search: use --resume to continue it, or another --output")
        warm = None if resume else warm_start(spec, dists, file)

    base = prologue(spec, run, out, "search", check=check)
    storage = open_storage(where)
    if resume and not study_exists(storage, spec.name):
        raise UserError(f"--resume: no study {spec.name!r} in {where}")
    if not resume and study_exists(storage, spec.name):
        raise UserError(f"{where} already holds a study {spec.name!r}: --resume its search, or rename the spec")

    shared = shared_datasets(spec)
    log(f"{spec.name}: search of {s.trials} trials over {', '.join(s.space)}; {len(shared.datasets)} datasets first")
    refs = place(shared, base, spec, file, log)
    out.write_bytes("sweep.json", json.dumps(results_spec(spec, []), indent=2).encode())
    out.write_bytes(SUITES_FILE, json.dumps(suite_conditions(spec), indent=1).encode())

    searcher = None
    if not resume:
        sampler = make_sampler(s, dists)
        study = create_study(s, spec.name, storage, sampler)
        for t in warm.trials:
            study.add_trial(t)
        if warm.trials or warm.skipped:
            left = f"; left out: {warm.summary()}" if warm.summary() else ""
            log(f"{spec.name}: warm start with {len(warm.trials)} trial(s){left}")
        searcher = StudySearch(dists, s, sampler, spec.name, storage, record=out.uri)
    first = s.objectives[0]
    progress = Progress(s.trials, first.metric, log, search_label, first.mode, search_trial_id)
    epochs = spec.training.max_epochs
    if "training.max_epochs" in s.space:
        epochs = max(int(dists["training.max_epochs"].high), epochs)
    grid = list(fit(make_tuner(spec, refs, out, progress, resume=resume, searcher=searcher, max_epochs=epochs), out,
                    run.signals))  # fmt: skip
    if len(grid) < s.trials:  # StudySearch answered FINISHED: nothing left but repeats
        log(
            f"{spec.name}: every point of the space is tried (warm start included): {len(grid)} of {s.trials} trials run"
        )

    study = optuna.load_study(study_name=spec.name, storage=storage)
    if resume:
        grid += orphans(out, study, {int(r.config[NUMBER]) for r in grid}, log)
    plans, outcomes, params = _outcomes(spec, grid, run.interrupted)
    trials, metrics = trial_rows(spec.name, plans, outcomes)
    extra = pd.DataFrame([params[t] for t in trials["trial_id"]])
    trials = pd.concat([trials, extra.astype({NUMBER: "Int64"})], axis=1)
    if s.constraints:
        by_number = {t.number: t for t in study.get_trials(deepcopy=False)}
        trials["feasible"] = [
            by_number[n].state.name == "COMPLETE" and all(v <= 0 for v in by_number[n].constraints.values())
            for n in trials[NUMBER]
        ]
    write_results(out, trials, metrics, history_rows(plans, outcomes))
    out.write_bytes("sweep.json", json.dumps(results_spec(spec, [p["levels"] for p in plans]), indent=2).encode())
    _write_study(out, study, spec, log)
    log(f"{spec.name}: {status_counts(trials)} -> {out.shown_of('trials.parquet')}, metrics.parquet, study.csv")
    return out.uri
