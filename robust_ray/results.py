"""The Parquet contract: ``trials.parquet`` (one row per trial) and ``metrics.parquet``
(one row per trial x suite x level), readable by pandas, DuckDB and polars alone.

``status`` is ``ok``, ``diverged`` or ``failed`` once a trial has finished; while a sweep
runs, the files are rewritten as trials finish, and the others are ``running`` or
``pending`` (no metrics yet).

Files are written to a temporary name and renamed, so an interrupted run never leaves a
broken file. The schema version is stored in the Parquet key-value metadata
(``robust_ray.schema``) so readers can refuse files from a newer robust_ray.
"""

from __future__ import annotations

import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .storage import Storage

SCHEMA_VERSION = 1
SCHEMA_KEY = b"robust_ray.schema"
TRIAL_COLUMNS = ["trial_id", "sweep", "arch", "recipe", "seed", "status"]  # then factors, then outcomes, acc_<suite>
OUTCOME_COLUMNS = [
    "train_acc", "val_acc", "train_loss", "epochs", "best_epoch", "n_train", "wall_s", "started_at", "error",
]  # fmt: skip
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


def trial_rows(
    sweep: str, plans: list[dict], outcomes: dict[str, dict], suites: list[str] = (), running: set[str] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Frames for the two files from the planned trials and what each reported.

    ``outcomes[trial_id]`` is the trial's last reported metrics, or ``{"status": "failed",
    "error": traceback}``. A trial with no outcome (never ran) is ``failed`` too, unless
    the sweep is still running (``running`` given: the ids of the trials running now):
    then it is ``running`` or ``pending``, with no error. Every suite of ``suites`` gets its
    ``acc_<suite>`` column, NaN where a trial has no value.
    """
    factors = sorted({f for p in plans for f in p["levels"]})
    trials, metrics = [], []
    for p in plans:
        if running is None:
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
        trials.append(row)
        # rows recorded before ``flipped`` existed have five fields
        for suite, condition, level, acc, n, *flipped in json.loads(out.get("metrics_json") or "[]"):
            metrics.append(
                {"trial_id": p["trial_id"], "suite": suite, "condition": condition, "level": level, "accuracy": acc, "n": n,
                 "flipped": flipped[0] if flipped else None}
            )
    tdf = pd.DataFrame(trials)
    for col in ("train_acc", "val_acc", "train_loss", "wall_s"):
        tdf[col] = tdf[col].astype("float64")
    tdf["started_at"] = pd.to_datetime(tdf["started_at"].astype("float64"), unit="s", utc=True)
    for col in ("epochs", "best_epoch", "n_train"):
        tdf[col] = tdf[col].astype("Int64")
    tdf["error"] = tdf["error"].astype("string")
    mdf = pd.DataFrame(metrics, columns=[*METRIC_COLUMNS, FLIPPED.name])
    mdf[FLIPPED.name] = mdf[FLIPPED.name].astype("Int64")
    return tdf, mdf


def table_bytes(df: pd.DataFrame, schema: pa.Schema | None = None) -> bytes:
    """``df`` as Parquet bytes, with the schema version in the key-value metadata."""
    table = pa.Table.from_pandas(df, schema=schema, preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta[SCHEMA_KEY] = str(SCHEMA_VERSION).encode()
    sink = pa.BufferOutputStream()
    pq.write_table(table.replace_schema_metadata(meta), sink)
    return sink.getvalue().to_pybytes()


def write_results(out: Storage, trials: pd.DataFrame, metrics: pd.DataFrame) -> None:
    """Both files, each written whole under a temporary name and then moved into place."""
    out.write_bytes("trials.parquet", table_bytes(trials))
    schema = METRICS_SCHEMA.append(FLIPPED) if FLIPPED.name in metrics else METRICS_SCHEMA
    out.write_bytes("metrics.parquet", table_bytes(metrics, schema))


def write_table(df: pd.DataFrame, uri: str, schema: pa.Schema | None = None) -> None:
    """Write one Parquet file at ``uri`` (local path or pyarrow URI), atomically."""
    folder, _, name = uri.rstrip("/").rpartition("/")
    Storage(folder or ".").write_bytes(name, table_bytes(df, schema))
