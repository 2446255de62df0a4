"""The Parquet contract: ``trials.parquet`` (one row per trial), ``metrics.parquet``
(one row per trial x suite x level) and ``history.parquet`` (one row per trial x epoch),
readable by pandas, DuckDB and polars alone.

Friendly to SQL: every ``acc_<suite>`` whose suite key is not an SQL identifier
(``acc_mnist-c``) has an alias beside it with the other characters as ``_``
(``acc_mnist_c``, :func:`sql_name`), so a query needs no quoting; accuracies are float64
ratios of whole counts (correct / n, exact), and metrics carry ``n_correct`` beside ``n``.

``status`` is ``ok``, ``diverged`` or ``failed`` once a trial has finished; while a sweep
runs, the files are rewritten as trials finish, and the others are ``running`` or
``pending`` (no metrics yet); a sweep stopped by Ctrl-C or SIGTERM writes the trials it had
not finished as ``interrupted`` (no metrics: ``--resume`` runs them).

Files are written to a temporary name, fsynced and renamed, so an interrupted run never
leaves a broken file. The schema version is stored in the Parquet key-value metadata
(``robust_ray.schema``) so readers can refuse files from a newer robust_ray.

The files are one commit: each write puts all of them into ``_commits/<id>/``, then writes
``results.json`` naming that id (the commit point), then refreshes the top-level files, each
of which carries the id in its metadata (``robust_ray.commit``). A crash between two
top-level renames leaves ids that differ; ``read_pair`` (and :func:`read_files`) then read
the committed files, so a reader never sees trials of one write beside metrics of another.
"""

from __future__ import annotations

import json
import re
import time

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .errors import UserError
from .storage import Storage

SCHEMA_VERSION = 1
SUITES_FILE = "suites.json"  # the conditions of every suite a folder's models were evaluated on
SCHEMA_KEY = b"robust_ray.schema"
TRIAL_COLUMNS = ["trial_id", "sweep", "arch", "recipe", "seed", "status"]  # then factors, then outcomes, acc_<suite>
OUTCOME_COLUMNS = [
    "train_acc", "val_acc", "train_loss", "epochs", "best_epoch", "n_train", "wall_s", "started_at", "error", "model_uri",
    "trial_key", "in_spec",
]  # fmt: skip
# trial_key: what the trained model is made of (plan.trial_key); in_spec: false for the trials of
# an earlier spec of the folder that an extended spec no longer holds (kept, left out of analyze)
ACHIEVED_PREFIX = "achieved_"  # achieved_<factor>: the level measured on the composed training set
AS_TRAINED_FACTORS = ("class_imbalance", "label_error")  # factors.compose's as_trained levels


def is_factor_column(column: str) -> bool:
    """A trials.parquet column that holds a factor's (nominal) level."""
    fixed = {*TRIAL_COLUMNS, *OUTCOME_COLUMNS, "ok"}
    return column not in fixed and not column.startswith(("acc_", ACHIEVED_PREFIX))


UNFINISHED = ("pending", "running", "interrupted")  # statuses of trials a partial file has no result for
METRIC_COLUMNS = ["trial_id", "suite", "condition", "level", "accuracy", "n"]
METRICS_SCHEMA = pa.schema(
    [
        ("trial_id", pa.string()),
        ("suite", pa.string()),
        ("condition", pa.string()),  # "6.5", "SP0.1GA0.2", "fog/3": conditions may share a level
        ("level", pa.float64()),
        ("accuracy", pa.float64()),  # n_correct / n in float64: the exact ratio, not a float32 mean
        ("n", pa.int64()),
        ("n_correct", pa.int64()),
    ]
)
# the columns every epoch of every recipe reports (train.fit); a recipe's extra per-epoch
# metrics follow as further columns
HISTORY_COLUMNS = ["trial_id", "epoch", "train_loss", "val_acc", "train_s"]
# optional and nullable, so files without it still read: images right unchanged and wrong
# under the condition, in suites holding their unchanged images (pixel: 002 §5's w)
FLIPPED = pa.field("flipped", pa.int64())
# optional: the sweep a row belongs to, so rows of results/*/metrics.parquet read together
# cannot pair one sweep's trial_id with another's (trial ids are local to a folder)
SWEEP = pa.field("sweep", pa.string())


def trial_rows(
    sweep: str,
    plans: list[dict],
    outcomes: dict[str, dict],
    suites: list[str] = (),
    running: set[str] | None = None,
    interrupted: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Frames for the two files from the planned trials and what each reported.

    ``outcomes[trial_id]`` is the trial's last reported metrics, or ``{"status": "failed",
    "error": traceback}``. A trial with no outcome (never ran) is ``failed`` too, unless
    the sweep is still running (``running`` given: the ids of the trials running now):
    then it is ``running`` or ``pending``, with no error; or the sweep was stopped by a
    signal (``interrupted``): then it is ``interrupted``, with no error and no metrics. Every suite of ``suites`` gets its
    ``acc_<suite>`` column, NaN where a trial has no value.
    """
    factors = sorted({f for p in plans for f in p["levels"]})
    trials, metrics = [], []
    for p in plans:
        if interrupted:
            missing = {"status": "interrupted"}
        elif running is None:
            missing = {"status": "failed", "error": "trial did not run"}
        else:
            missing = {"status": "running" if p["trial_id"] in running else "pending"}
        out = outcomes.get(p["trial_id"], missing)
        achieved = json.loads(out.get("achieved_json") or "{}")
        row = {
            "trial_id": p["trial_id"],
            "sweep": sweep,
            "arch": p["arch"],
            "recipe": p.get("recipe", "standard"),
            "seed": int(p["seed"]),
            "status": out.get("status", "failed"),
        }
        for f in factors:
            level = p["levels"].get(f)
            row[f] = float(level) if level is not None else achieved.get(f, float("nan"))
        for f in (f for f in factors if f in AS_TRAINED_FACTORS):
            row[ACHIEVED_PREFIX + f] = achieved.get("as_trained", {}).get(f, float("nan"))
        row.update(
            train_acc=out.get("train_acc"),
            val_acc=out.get("val_acc"),
            train_loss=out.get("train_loss"),
            epochs=out.get("epochs"),
            best_epoch=out.get("best_epoch"),
            n_train=out.get("n_train"),
            wall_s=out.get("wall_s"),
            started_at=out.get("started_at"),
        )
        row.update({f"acc_{s}": float("nan") for s in suites})
        row.update({k: v for k, v in out.items() if k.startswith("acc_")})
        row["error"] = out.get("error")
        row["model_uri"] = out.get("model_uri")  # OUT/models/<trial_id>.safetensors when kept
        row["trial_key"] = p.get("key") or None
        row["in_spec"] = True
        trials.append(row)
        # rows recorded before ``flipped`` existed have five fields
        for suite, condition, level, acc, n, *flipped in json.loads(out.get("metrics_json") or "[]"):
            metrics.append(
                {
                    "trial_id": p["trial_id"],
                    "suite": suite,
                    "condition": condition,
                    "level": level,
                    "accuracy": acc,
                    "n": n,
                    # accuracies are ratios of whole counts: rounding recovers the count, also
                    # from rows recorded as float32 means before n_correct existed
                    "n_correct": None if acc is None or acc != acc else round(acc * n),
                    "sweep": sweep,
                    "flipped": flipped[0] if flipped else None,
                }
            )
    tdf = pd.DataFrame(trials)
    for col in ("train_acc", "val_acc", "train_loss", "wall_s"):
        tdf[col] = tdf[col].astype("float64")
    tdf["started_at"] = pd.to_datetime(tdf["started_at"].astype("float64"), unit="s", utc=True)
    for col in ("epochs", "best_epoch", "n_train"):
        tdf[col] = tdf[col].astype("Int64")
    tdf["error"] = tdf["error"].astype("string")
    tdf["model_uri"] = tdf["model_uri"].astype("string")
    tdf["trial_key"] = tdf["trial_key"].astype("string")
    tdf["in_spec"] = tdf["in_spec"].astype("bool")
    mdf = pd.DataFrame(metrics, columns=[*METRIC_COLUMNS, "n_correct", SWEEP.name, FLIPPED.name])
    mdf[SWEEP.name] = mdf[SWEEP.name].astype("string")
    mdf[FLIPPED.name] = mdf[FLIPPED.name].astype("Int64")
    mdf["n_correct"] = mdf["n_correct"].astype("Int64")
    return tdf, mdf


def history_rows(plans: list[dict], outcomes: dict[str, dict]) -> pd.DataFrame:
    """``history.parquet``: one row per trial x epoch, from each outcome's ``history_json``
    (the list of per-epoch reports), in plan order; trials without one add no rows."""
    rows = []
    for p in plans:
        for epoch in json.loads(outcomes.get(p["trial_id"], {}).get("history_json") or "[]"):
            rows.append({"trial_id": p["trial_id"], **epoch})
    df = pd.DataFrame(rows, columns=list(dict.fromkeys([*HISTORY_COLUMNS, *(k for r in rows for k in r)])))
    df["trial_id"] = df["trial_id"].astype("string")
    df["epoch"] = df["epoch"].astype("int64")
    for col in df.columns[2:]:
        if col in HISTORY_COLUMNS or pd.api.types.is_numeric_dtype(df[col]):
            df[col] = df[col].astype("float64")
    return df


def sql_name(column: str) -> str:
    """A column name as an SQL identifier needing no quotes: other characters become ``_``."""
    return re.sub(r"[^A-Za-z0-9_]", "_", column)


def alias_columns(columns) -> dict[str, str]:
    """alias -> original of the ``acc_<suite>`` aliases present among ``columns`` (spec
    checks refuse suite keys whose SQL names collide, so an alias never hides a suite)."""
    cols = set(columns)
    return {sql_name(c): c for c in columns if c.startswith("acc_") and sql_name(c) != c and sql_name(c) in cols}


def with_aliases(trials: pd.DataFrame) -> pd.DataFrame:
    """``trials`` with each hyphenated ``acc_<suite>`` column's SQL-named copy right after it."""
    out = trials
    for c in list(trials.columns):
        alias = sql_name(c)
        if c.startswith("acc_") and alias != c and alias not in out:
            out = out.copy() if out is trials else out
            out.insert(out.columns.get_loc(c) + 1, alias, out[c])
    return out


COMMIT_KEY = b"robust_ray.commit"
COMMITS_DIR, MANIFEST = "_commits", "results.json"
FILES = ("trials.parquet", "metrics.parquet")
HISTORY = "history.parquet"


def table_bytes(df: pd.DataFrame, schema: pa.Schema | None = None, commit: str | None = None) -> bytes:
    """``df`` as Parquet bytes, with the schema version (and commit id) in the key-value metadata."""
    table = pa.Table.from_pandas(df, schema=schema, preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta[SCHEMA_KEY] = str(SCHEMA_VERSION).encode()
    if commit is not None:
        meta[COMMIT_KEY] = commit.encode()
    sink = pa.BufferOutputStream()
    pq.write_table(table.replace_schema_metadata(meta), sink)
    return sink.getvalue().to_pybytes()


def metrics_schema(metrics: pd.DataFrame) -> pa.Schema:
    """The metrics schema for the columns ``metrics`` has (``n_correct``, ``sweep`` and
    ``flipped`` are optional: frames read from older files may lack them)."""
    schema = (
        METRICS_SCHEMA if "n_correct" in metrics else METRICS_SCHEMA.remove(METRICS_SCHEMA.get_field_index("n_correct"))
    )
    for f in (SWEEP, FLIPPED):
        if f.name in metrics:
            schema = schema.append(f)
    return schema


def write_results(
    out: Storage, trials: pd.DataFrame, metrics: pd.DataFrame, history: pd.DataFrame | None = None
) -> str:
    """The files as one commit (see the module docstring): trials, metrics and, when given,
    the per-epoch ``history``; returns the commit id."""
    commit = f"{time.time_ns():016x}"
    if {"accuracy", "n"} <= set(metrics):  # rows added without it (robust-ray evaluate, older files)
        counted = (metrics["accuracy"] * metrics["n"]).round().astype("Int64")
        metrics = metrics.assign(
            n_correct=metrics["n_correct"].astype("Int64").fillna(counted) if "n_correct" in metrics else counted
        )
    blobs = {FILES[0]: table_bytes(with_aliases(trials), commit=commit),
             FILES[1]: table_bytes(metrics, metrics_schema(metrics), commit=commit)}  # fmt: skip
    if history is not None:
        blobs[HISTORY] = table_bytes(history, commit=commit)
    for name, blob in blobs.items():
        out.write_bytes(f"{COMMITS_DIR}/{commit}/{name}", blob)
    rows = {
        "trials": len(trials),
        "metrics": len(metrics),
        **({"history": len(history)} if history is not None else {}),
    }
    manifest = {"commit": commit, "rows": rows, "files": {n: f"{COMMITS_DIR}/{commit}/{n}" for n in blobs}}
    out.write_bytes(MANIFEST, json.dumps(manifest, indent=1).encode())
    for name, blob in blobs.items():
        out.write_bytes(name, blob)
    for old in out.list_dirs(COMMITS_DIR):
        if old != commit:
            out.delete_dir(f"{COMMITS_DIR}/{old}")
    return commit


def added_suites(listed: dict | None) -> dict[str, dict]:
    """The suites ``robust-ray evaluate`` added to a finished sweep, from its suites.json
    (entries that carry the suite's ``spec``, as the spec dumps it): sweep.json stays the
    spec the sweep ran, so resume and ``--extend`` compare against what was trained."""
    return {k: v["spec"] for k, v in (listed or {}).items() if isinstance(v, dict) and isinstance(v.get("spec"), dict)}


def parse_suites(text: str, where: str, error: type[UserError] = UserError) -> dict:
    """A suites.json's content, checked once for every reader (``listed_suites`` on any
    Storage, the analysis's local folders): ``{suite: {type, conditions: [...], ...}}``.
    A file that is not that is an ``error`` naming ``where``."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise error(f"{where}: not readable JSON ({e})") from None
    if not isinstance(data, dict) or not all(
        isinstance(v, dict) and isinstance(v.get("conditions"), list) for v in data.values()
    ):
        raise error(f"{where}: not a suites file (expected {{suite: {{type, conditions: [...]}}}})")
    return data


def listed_suites(out: Storage) -> dict:
    """A results folder's suites.json, checked (``{}`` before the first sweep wrote one)."""
    if not out.exists(SUITES_FILE):
        return {}
    return parse_suites(out.read_text(SUITES_FILE), out.shown_of(SUITES_FILE))


def evaluated_suites(listed: dict | None, ran: dict | None) -> dict[str, dict]:
    """Every suite a results folder's models were evaluated on, as the spec dumps it: the
    sweep's own (``ran``, sweep.json's) and those ``robust-ray evaluate`` added."""
    return {**added_suites(listed), **(ran or {})}


def commit_of(path: str, filesystem=None) -> str | None:
    """The commit id in a results file's metadata (None for files written without one)."""
    meta = pq.read_schema(path, filesystem=filesystem).metadata or {}
    return meta[COMMIT_KEY].decode() if COMMIT_KEY in meta else None


def read_pair(folder: str) -> tuple[str, str]:
    """Paths (or URIs) of a trials/metrics pair that belong together.

    The top-level pair when their commit ids agree (or one has none: a file written by
    hand or by an older robust_ray); else the pair ``results.json`` committed last.
    """
    files = read_files(folder)
    return files[FILES[0]], files[FILES[1]]


def read_files(folder: str) -> dict[str, str]:
    """Paths (or URIs) of the results files that belong together: trials and metrics, and
    history when the commit has one (or, from an older robust_ray, none but a top-level file).

    The top-level files when their commit ids agree (or one has none: a file written by
    hand or by an older robust_ray); else the files ``results.json`` committed last.
    """
    out = Storage(folder, what="results")
    names = [n for n in (*FILES, HISTORY) if n in FILES or out.exists(n)]
    top = {n: out.uri_of(n) for n in names}
    if not all(out.exists(n) for n in FILES):
        return top
    ids = [commit_of(out.path(n), out.fs) for n in names]
    if None in ids[:2] or len(set(ids)) == 1 or not out.exists(MANIFEST):
        return top
    manifest = json.loads(out.read_text(MANIFEST))
    if ids[0] == ids[1] and manifest["commit"] != ids[0]:  # a history file written by hand or left from elsewhere
        return {n: u for n, u in top.items() if n in FILES}
    return {n: out.uri_of(p) for n, p in manifest["files"].items()}


def write_table(df: pd.DataFrame, uri: str, schema: pa.Schema | None = None) -> None:
    """Write one Parquet file at ``uri`` (local path or pyarrow URI), atomically."""
    folder, _, name = uri.rstrip("/").rpartition("/")
    Storage(folder or ".").write_bytes(name, table_bytes(df, schema))


def status_counts(trials: pd.DataFrame) -> str:
    """``27 trials: 25 ok, 1 diverged, 1 failed``: every status present, in a fixed order."""
    counts = trials["status"].value_counts()
    order = ["ok", "diverged", "failed", "interrupted", "stopped", "pending", "running"]
    parts = [f"{int(counts[s])} {s}" for s in order if s in counts]
    parts += [f"{int(n)} {s}" for s, n in counts.items() if s not in order]
    return f"{len(trials)} trials: " + ", ".join(parts)
