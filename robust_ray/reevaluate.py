"""``robust-ray evaluate DIR --suite ...``: the kept models of a finished sweep on new suites.

Each ok trial's weights (``model_uri``, written with ``training.save_models``) are loaded
and evaluated with :func:`robust_ray.evaluate`; the rows are appended to metrics.parquet,
the trial's ``acc_<suite>`` to trials.parquet and the suite to suites.json, as one commit
(:func:`robust_ray.results.write_results`). A (trial, suite, condition) already there is not
redone, so the command is idempotent; the files are committed every few seconds and when it
is stopped, so an interrupted evaluate keeps every model it finished. A suite name already
stored with other options is refused (``acc_<suite>`` would mix two suites). sweep.json is
left as the sweep ran (resume compares against it); suites.json holds each added suite's
``spec``, which ``analyze`` reads.
Each model is one Ray task asking for the spec's ``resources`` (the test split put in the
object store once), so a cluster evaluates as many at once as it trains; a model whose
rows are all there is not evaluated again.
"""

from __future__ import annotations

import json
import time

import pandas as pd
import yaml

from .errors import SpecError, UserError
from .results import HISTORY, SUITES_FILE, evaluated_suites, listed_suites, read_files, write_results
from .storage import Storage


def parse_suite_arg(arg: str) -> tuple[str, dict]:
    """``pgd:norm=l2,eps=[1,2]`` -> ("pgd", {"norm": "l2", "eps": [1, 2]}): values are YAML."""
    name, _, rest = arg.partition(":")
    opts: dict = {}
    depth, part, parts = 0, "", []
    for ch in rest:  # split on commas outside brackets: eps=[1,2] stays whole
        depth += ch in "[{" and 1 or (-1 if ch in "]}" else 0)
        if ch == "," and depth == 0:
            parts.append(part)
            part = ""
        else:
            part += ch
    if part:
        parts.append(part)
    for p in parts:
        key, eq, value = p.partition("=")
        if not eq or not key.strip():
            raise UserError(f"--suite {arg}: expected NAME[:key=value,...], got {p!r}")
        opts[key.strip()] = yaml.safe_load(value)
    if not name:
        raise UserError(f"--suite {arg}: no suite name")
    return name, opts


def _suites(args_suites: list[str], suites_file: str | None) -> tuple[dict[str, dict], str]:
    if suites_file:
        try:
            data = yaml.safe_load(open(suites_file).read())
        except (OSError, yaml.YAMLError) as e:
            raise UserError(f"{suites_file}: cannot read it ({e})") from None
        if not isinstance(data, dict) or not data:
            raise SpecError(suites_file, "", "a mapping of suite name -> options")
        return {k: dict(v or {}) for k, v in data.items()}, suites_file
    if not args_suites:
        raise UserError("evaluate: give --suite NAME[:key=value,...] or --suites FILE.yaml")
    return dict(parse_suite_arg(a) for a in args_suites), "--suite"


def _evaluate_task(models: str, trial_id: str, want: dict, device: str, test):
    """One kept model (in the folder ``models``) on the suites, in a Ray worker or here:
    (rows, the worker's pid)."""
    import os

    from .evaluate import evaluate
    from .saved_models import load_model
    from .train import pick_device

    model, _ = load_model(models, trial_id)
    return evaluate(model, dict(want), data=test, device=str(pick_device(device))), os.getpid()


def _shown(suite: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in suite.items() if v not in (None, {}, [])) or "its defaults"


def _check_names(out: Storage, source: str, spec_dict: dict, listed: dict, spec, new: dict, dumped: dict) -> None:
    """A suite name keeps what it meant: evaluating ``pgd`` with other options than the rows
    already stored under ``pgd`` would mix two suites in one ``acc_pgd``."""
    from .suite_table import describe_suite
    from .suites import suite_def

    stored = evaluated_suites(listed, spec_dict.get("suites"))
    for name in new:
        was = stored.get(name)
        if was is None and name in listed:  # added by an evaluate that did not store the spec: its words
            said = describe_suite(suite_def(spec.suite_type(name)), spec.suites[name])
            changed, was_shown = listed[name].get("description") != said, listed[name].get("description")
        else:
            changed, was_shown = was is not None and was != dumped[name], _shown(was or {})
        if changed:
            raise SpecError(source, f"suites.{name}", f"differs from the suite {name!r} {out.shown} was evaluated on "
                            f"({was_shown}); a suite's name keeps what it meant: give the changed suite a new name")  # fmt: skip


def evaluate_folder(folder: str, suite_args: list[str], suites_file: str | None = None, data_root: str | None = None,
                    log=print, address: str | None = None, num_cpus: int | None = None) -> int:  # fmt: skip
    """Evaluate the kept models in ``folder`` on the suites; returns the rows added."""
    from . import data
    from .config import parse_spec
    from .suite_table import suite_conditions
    from .suites import suite_def

    out = Storage(folder, what="results")
    if not out.exists("sweep.json"):
        raise UserError(f"{out.shown}: no sweep.json (not a results folder)")
    new, source = _suites(suite_args, suites_file)
    spec_dict = json.loads(out.read_text("sweep.json"))
    try:  # validated as the spec would be, with these suites
        spec = parse_spec({**spec_dict, "suites": new})
    except SpecError as e:
        raise SpecError(source, e.path, e.message) from None
    for name in new:
        if suite_def(spec.suite_type(name)).needs_model:
            raise SpecError(
                source, f"suites.{name}", "suites built against a reference model cannot be added afterwards"
            )
    listed = listed_suites(out)
    dumped = spec.model_dump(mode="json")["suites"]
    _check_names(out, source, spec_dict, listed, spec, new, dumped)
    files = read_files(folder)
    trials, metrics = pd.read_parquet(files["trials.parquet"]), pd.read_parquet(files["metrics.parquet"])
    history = pd.read_parquet(files[HISTORY]) if HISTORY in files else None  # carried into the new commit
    if "model_uri" not in trials or trials["model_uri"].isna().all():
        raise UserError(
            f"{out.shown}: no kept models (model_uri is empty): rerun the sweep with training.save_models: true"
        )
    entries = suite_conditions(spec)
    for name in new:  # what analyze reads as the suite (sweep.json is left as the sweep ran)
        if name not in (spec_dict.get("suites") or {}):
            entries[name]["spec"] = dumped[name]

    def commit(t: pd.DataFrame, m: pd.DataFrame) -> None:
        write_results(out, t, m, history)
        out.write_bytes(SUITES_FILE, json.dumps({**listed, **entries}, indent=1).encode())

    base = data.load(spec.dataset.name, data_root or spec.dataset.root, spec.dataset.download)
    _, _, added = evaluate_kept(
        trials, metrics, spec, new, base, out.uri_of("models"), log=log, ray_at=(address, num_cpus), commit=commit
    )
    return added


def evaluate_kept(trials: pd.DataFrame, metrics: pd.DataFrame, spec, want: dict[str, dict], base, models: str,
                  ids=None, log=print, ray_at: tuple | None = None, commit=None,
                  every_s: float = 5.0) -> tuple[pd.DataFrame, pd.DataFrame, int]:  # fmt: skip
    """The kept models of the ok trials (of ``ids``, default all), read from ``models`` (the
    results folder's ``models/`` as the caller reached it: a copied or moved folder reads its
    own copies, and the URI keeps the credentials ``model_uri`` leaves out), evaluated on the suites
    ``want`` ({name: the suite's spec keys}): metrics rows appended, ``acc_<name>``
    (n-weighted over its conditions, from every row of the suite) set in trials. A (trial,
    suite, condition) already in ``metrics`` is not redone. ``ray_at`` = (address, num_cpus):
    one Ray task per model with the spec's resources (Ray started, or joined, only when a
    model is left to evaluate); else in this process. ``commit(trials, metrics)``, when
    given, is called at most every ``every_s`` seconds, when an evaluation fails or is
    interrupted (what finished is kept) and at the end. Returns both frames and the number
    of rows added."""
    if "sweep" not in metrics:  # written before the column: the folder's rows are its sweep's
        metrics = metrics.assign(sweep=pd.Series(spec.name, index=metrics.index, dtype="string"))
    done = set(zip(metrics["trial_id"], metrics["suite"], metrics["condition"]))
    rows: list[dict] = []
    todo = trials[(trials["status"] == "ok") & trials["model_uri"].notna()]
    if ids is not None:
        todo = todo[todo["trial_id"].isin(list(ids))]
    from .suite_table import suite_conditions

    wanted = {(s, c["name"]) for s, v in suite_conditions(spec).items() if s in want for c in v["conditions"]}
    have: dict[str, set] = {}
    for tid, s, c in done:  # one pass over the rows, not one per trial
        have.setdefault(tid, set()).add((s, c))
    todo = todo.loc[[not wanted <= have.get(t, set()) for t in todo["trial_id"]]]
    rows_of = [t for _, t in todo.iterrows()]
    started = False
    last = time.monotonic()
    try:
        if ray_at is not None and rows_of:
            from .runtime import connect, is_up, tasks_as_done

            started = not is_up()
            connect(*ray_at)
            calls = [(models, t["trial_id"], dict(want), spec.training.device) for t in rows_of]
            finished = tasks_as_done(_evaluate_task, calls, spec.resources.cpu, spec.resources.gpu, base.test)
        for i, t in enumerate(rows_of):
            if ray_at is not None:
                k, (got, pid) = next(finished)
                t, where = rows_of[k], f", Ray worker pid {pid}"
            else:
                got, _ = _evaluate_task(models, t["trial_id"], dict(want), spec.training.device, base.test)
                where = ""
            fresh = got[[(t["trial_id"], s, c) not in done for s, c in zip(got["suite"], got["condition"])]]
            rows += [{"trial_id": t["trial_id"], "suite": r.suite, "condition": r.condition, "level": float(r.level),
                      "accuracy": float(r.accuracy), "n": int(r.n), "n_correct": int(r.n_correct), "sweep": spec.name,
                      "flipped": None}
                     for r in fresh.itertuples()]  # fmt: skip
            log(f"evaluate: {i + 1}/{len(todo)} models ({len(fresh)} new rows for {t['trial_id']}{where})")
            if commit is not None and time.monotonic() - last >= every_s and i + 1 < len(rows_of):
                commit(*_with_rows(trials, metrics, rows, want))
                last = time.monotonic()
    except BaseException:
        if commit is not None and rows:
            commit(*_with_rows(trials, metrics, rows, want))
        raise
    finally:
        if started:
            from .runtime import shutdown

            shutdown()
    trials, metrics = _with_rows(trials, metrics, rows, want)
    if commit is not None:
        commit(trials, metrics)
    return trials, metrics, len(rows)


def _with_rows(
    trials: pd.DataFrame, metrics: pd.DataFrame, rows: list[dict], want
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both frames with ``rows`` appended and ``acc_<suite>`` of ``want`` recomputed from
    every row of the suite (a trial with none keeps what it had)."""
    if rows:
        metrics = pd.concat(
            [metrics, pd.DataFrame(rows).astype({"flipped": "Int64", "sweep": "string"})], ignore_index=True
        )
    trials = trials.copy()
    for name in want:
        m = metrics[metrics["suite"] == name]
        acc = (m["accuracy"] * m["n"]).groupby(m["trial_id"]).sum() / m["n"].groupby(m["trial_id"]).sum()
        fresh = trials["trial_id"].map(acc).astype("float64")
        col = f"acc_{name}"
        trials[col] = fresh if col not in trials else fresh.where(fresh.notna(), trials[col].astype("float64"))
    return trials, metrics
