"""``robust-ray evaluate DIR --suite ...``: the kept models of a finished sweep on new suites.

Each ok trial's weights (``model_uri``, written with ``training.save_models``) are loaded
and evaluated with :func:`robust_ray.evaluate`; the rows are appended to metrics.parquet,
the trial's ``acc_<suite>`` to trials.parquet and the suite to suites.json, as one commit
(:func:`robust_ray.results.write_results`). A (trial, suite, condition) already there is not
redone, so the command is idempotent (the rows are written once, at the end: an interrupted
run keeps none of its work).
Each model is one Ray task asking for the spec's ``resources`` (the test split put in the
object store once), so a cluster evaluates as many at once as it trains; a model whose
rows are all there is not evaluated again.
"""

from __future__ import annotations

import json

import pandas as pd
import yaml

from .errors import SpecError, UserError
from .results import HISTORY, read_files, write_results
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


def _evaluate_task(uri: str, trial_id: str, want: dict, gpu: float, test):
    """One kept model on the suites, in a Ray worker: (rows, the worker's pid)."""
    import os

    import torch

    from .evaluate import evaluate
    from .saved_models import load_model

    model, _ = load_model(uri.rsplit("/", 1)[0], trial_id)
    device = "cuda" if gpu and torch.cuda.is_available() else "cpu"
    return evaluate(model, dict(want), data=test, device=device), os.getpid()


def evaluate_folder(folder: str, suite_args: list[str], suites_file: str | None = None, data_root: str | None = None,
                    log=print, address: str | None = None, num_cpus: int | None = None) -> int:  # fmt: skip
    """Evaluate the kept models in ``folder`` on the suites; returns the rows added."""
    from . import data
    from .config import parse_spec
    from .suite_table import describe_suite, suite_conditions
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
    files = read_files(folder)
    trials, metrics = pd.read_parquet(files["trials.parquet"]), pd.read_parquet(files["metrics.parquet"])
    history = pd.read_parquet(files[HISTORY]) if HISTORY in files else None  # carried into the new commit
    if "model_uri" not in trials or trials["model_uri"].isna().all():
        raise UserError(
            f"{out.shown}: no kept models (model_uri is empty): rerun the sweep with training.save_models: true"
        )
    base = data.load(spec.dataset.name, data_root or spec.dataset.root, spec.dataset.download)
    from .runtime import connect, is_up, shutdown

    started = not is_up()
    connect(address, num_cpus)
    try:
        trials, metrics, added = evaluate_kept(trials, metrics, spec, new, base, log=log, tasks=True)
    finally:
        if started:
            shutdown()
    write_results(out, trials, metrics, history)
    listed = json.loads(out.read_text("suites.json")) if out.exists("suites.json") else {}
    listed.update(suite_conditions(spec))
    for name in new:
        listed[name]["description"] = describe_suite(suite_def(spec.suite_type(name)), spec.suites[name])
    out.write_bytes("suites.json", json.dumps(listed, indent=1).encode())
    return added


def evaluate_kept(trials: pd.DataFrame, metrics: pd.DataFrame, spec, want: dict[str, dict], base, ids=None,
                  log=print, tasks: bool = False) -> tuple[pd.DataFrame, pd.DataFrame, int]:  # fmt: skip
    """The kept models of the ok trials (of ``ids``, default all) evaluated on the suites
    ``want`` ({name: the suite's spec keys}): metrics rows appended, ``acc_<name>``
    (n-weighted over its conditions) set in trials. A (trial, suite, condition) already in
    ``metrics`` is not redone. ``tasks``: one Ray task per model with the spec's resources
    (Ray must be up); else in this process. Returns both frames and the number of rows added."""
    if "sweep" not in metrics:  # written before the column: the folder's rows are its sweep's
        metrics = metrics.assign(sweep=pd.Series(spec.name, index=metrics.index, dtype="string"))
    done = set(zip(metrics["trial_id"], metrics["suite"], metrics["condition"]))
    rows = []
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
    if tasks:
        from .runtime import tasks_as_done

        gpu = spec.resources.gpu
        calls = [(str(t["model_uri"]), t["trial_id"], dict(want), gpu) for t in rows_of]
        finished = tasks_as_done(_evaluate_task, calls, spec.resources.cpu, gpu, base.test)
    for i, t in enumerate(rows_of):
        if tasks:
            k, (got, pid) = next(finished)
            t, where = rows_of[k], f", Ray worker pid {pid}"
        else:
            got, _ = _evaluate_task(str(t["model_uri"]), t["trial_id"], dict(want), spec.resources.gpu, base.test)
            where = ""
        fresh = got[[(t["trial_id"], s, c) not in done for s, c in zip(got["suite"], got["condition"])]]
        rows += [{"trial_id": t["trial_id"], "suite": r.suite, "condition": r.condition, "level": float(r.level),
                  "accuracy": float(r.accuracy), "n": int(r.n), "n_correct": int(r.n_correct), "sweep": spec.name,
                  "flipped": None}
                 for r in fresh.itertuples()]  # fmt: skip
        log(f"evaluate: {i + 1}/{len(todo)} models ({len(fresh)} new rows for {t['trial_id']}{where})")
    if rows:
        metrics = pd.concat(
            [metrics, pd.DataFrame(rows).astype({"flipped": "Int64", "sweep": "string"})], ignore_index=True
        )
    for name in want:
        m = metrics[metrics["suite"] == name]
        acc = (m["accuracy"] * m["n"]).groupby(m["trial_id"]).sum() / m["n"].groupby(m["trial_id"]).sum()
        fresh = trials["trial_id"].map(acc).astype("float64")
        col = f"acc_{name}"
        trials[col] = fresh if col not in trials else trials[col].astype("float64").where(trials[col].notna(), fresh)
    return trials, metrics, len(rows)
