"""The Parquet contract: ``trials.parquet`` (one row per trial) and ``metrics.parquet``
(one row per trial x suite x level), readable by pandas, DuckDB and polars alone.

``status`` is ``ok``, ``diverged`` or ``failed`` once a trial has finished; while a sweep
runs, the files are rewritten as trials finish, and the others are ``running`` or
``pending`` (no metrics yet); a sweep stopped by Ctrl-C or SIGTERM writes the trials it had
not finished as ``interrupted`` (no metrics: ``--resume`` runs them).

Files are written to a temporary name, fsynced and renamed, so an interrupted run never
leaves a broken file. The schema version is stored in the Parquet key-value metadata
(``robust_ray.schema``) so readers can refuse files from a newer robust_ray.

The two files are one commit: each write puts both into ``_commits/<id>/``, then writes
``results.json`` naming that id (the commit point), then refreshes the top-level pair, both
of which carry the id in their metadata (``robust_ray.commit``). A crash between the two
top-level renames leaves ids that differ; ``read_pair`` then reads the committed pair, so a
reader never sees trials of one write beside metrics of another.
"""

from __future__ import annotations

import json
import time

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .storage import Storage

SCHEMA_VERSION = 1
SCHEMA_KEY = b"robust_ray.schema"
TRIAL_COLUMNS = ["trial_id", "sweep", "arch", "recipe", "seed", "status"]  # then factors, then outcomes, acc_<suite>
OUTCOME_COLUMNS = [
    "train_acc", "val_acc", "train_loss", "epochs", "best_epoch", "n_train", "wall_s", "started_at", "error", "model_uri",
    "trial_key", "in_spec",
]  # fmt: skip
# trial_key: what the trained model is made of (plan.trial_key); in_spec: false for the trials of
# an earlier spec of the folder that an extended spec no longer holds (kept, left out of analyze)
UNFINISHED = ("pending", "running", "interrupted")  # statuses of trials a partial file has no result for
METRIC_COLUMNS = ["trial_id", "suite", "condition", "level", "accuracy", "n"]
METRICS_SCHEMA = pa.schema(
    [
        ("trial_id", pa.string()),
        ("suite", pa.string()),
        ("condition", pa.string()),  # "6.5", "SP0.1GA0.2", "fog/3": conditions may share a level
        ("level", pa.float64()),
        ("accuracy", pa.float64()),
        ("n", pa.int64()),
    ]
)
# optional and nullable, so files without it still read: images right unchanged and wrong
# under the condition, in suites holding their unchanged images (pixel: 002 §5's w)
FLIPPED = pa.field("flipped", pa.int64())
# optional: the sweep a row belongs to, so rows of results/*/metrics.parquet read together
# cannot pair one sweep's trial_id with another's (trial ids are local to a folder)
SWEEP = pa.field("sweep", pa.string())


def metrics_schema(metrics: pd.DataFrame) -> pa.Schema:
    """The schema of a metrics frame: the required columns, then the optional ones it has."""
    schema = METRICS_SCHEMA
    for f in (SWEEP, FLIPPED):
        if f.name in metrics:
            schema = schema.append(f)
    return schema


def trial_rows(
    sweep: str, plans: list[dict], outcomes: dict[str, dict], suites: list[str] = (), running: set[str] | None = None,
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
                {"trial_id": p["trial_id"], "suite": suite, "condition": condition, "level": level, "accuracy": acc, "n": n,
                 "sweep": sweep, "flipped": flipped[0] if flipped else None}
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
    mdf = pd.DataFrame(metrics, columns=[*METRIC_COLUMNS, SWEEP.name, FLIPPED.name])
    mdf[SWEEP.name] = mdf[SWEEP.name].astype("string")
    mdf[FLIPPED.name] = mdf[FLIPPED.name].astype("Int64")
    return tdf, mdf


COMMIT_KEY = b"robust_ray.commit"
COMMITS_DIR, MANIFEST = "_commits", "results.json"
FILES = ("trials.parquet", "metrics.parquet")


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


def write_results(out: Storage, trials: pd.DataFrame, metrics: pd.DataFrame) -> str:
    """Both files as one commit (see the module docstring); returns the commit id."""
    commit = f"{time.time_ns():016x}"
    schema = metrics_schema(metrics)
    blobs = dict(zip(FILES, (table_bytes(trials, commit=commit), table_bytes(metrics, schema, commit=commit))))
    for name, blob in blobs.items():
        out.write_bytes(f"{COMMITS_DIR}/{commit}/{name}", blob)
    manifest = {"commit": commit, "rows": {"trials": len(trials), "metrics": len(metrics)},
                "files": {n: f"{COMMITS_DIR}/{commit}/{n}" for n in FILES}}  # fmt: skip
    out.write_bytes(MANIFEST, json.dumps(manifest, indent=1).encode())
    for name, blob in blobs.items():
        out.write_bytes(name, blob)
    for old in out.list_dirs(COMMITS_DIR):
        if old != commit:
            out.delete_dir(f"{COMMITS_DIR}/{old}")
    return commit


def commit_of(path: str, filesystem=None) -> str | None:
    """The commit id in a results file's metadata (None for files written without one)."""
    meta = pq.read_schema(path, filesystem=filesystem).metadata or {}
    return meta[COMMIT_KEY].decode() if COMMIT_KEY in meta else None


def read_pair(folder: str) -> tuple[str, str]:
    """Paths (or URIs) of a trials/metrics pair that belong together.

    The top-level pair when their commit ids agree (or one has none: a file written by
    hand or by an older robust_ray); else the pair ``results.json`` committed last.
    """
    out = Storage(folder, what="results")
    top = tuple(out.uri_of(n) for n in FILES)
    if not all(out.exists(n) for n in FILES):
        return top
    ids = [commit_of(out.path(n), out.fs) for n in FILES]
    if None in ids or ids[0] == ids[1] or not out.exists(MANIFEST):
        return top
    manifest = json.loads(out.read_text(MANIFEST))
    return tuple(out.uri_of(manifest["files"][n]) for n in FILES)


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
