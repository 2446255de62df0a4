"""Reading results: ``trials.parquet`` + ``metrics.parquet`` + ``sweep.json``, validated.

A results argument is a folder written by ``robust-ray run``, a folder holding several such
folders, or a glob (``results/*``) naming them. Every file is checked against the Parquet
contract of :mod:`robust_ray.results` before anything is computed: a file that is not
robust_ray's (no ``robust_ray.schema`` key), one from a newer schema, or one missing a
contract column is refused with a message naming the file and the column.

The design of each sweep comes from its ``sweep.json`` (the validated spec); without one it
is inferred from the factor columns. The suites' conditions and their parameters come from
``suites.json`` (:mod:`.conditions`); metrics files written before conditions existed (no
``condition`` column) get one condition per level, named by the level. Nothing here
imports torch.
"""

from __future__ import annotations

import glob
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..results import (
    ACHIEVED_PREFIX,
    FLIPPED,
    METRIC_COLUMNS,
    SCHEMA_KEY,
    SCHEMA_VERSION,
    SUITES_FILE,
    TRIAL_COLUMNS,
    UNFINISHED,
    added_suites,
    alias_columns,
    is_factor_column,
)  # fmt: skip
from .conditions import condition_table, read_suites
from .errors import ResultsError

TRIALS_FILE, METRICS_FILE, SPEC_FILE, HISTORY_FILE = (
    "trials.parquet",
    "metrics.parquet",
    "sweep.json",
    "history.parquet",
)
NUMERIC_METRIC_COLUMNS = ["level", "accuracy", "n"]


@dataclass
class Design:
    """What one sweep varied: its design type, factors with planned levels and baseline."""

    sweep: str
    type: str  # "one_factor", "grid", any other registered design, or "inferred: ..."
    factors: dict[str, list[float]]  # planned levels
    baselines: dict[str, float | None]  # the column value of each factor's untouched level
    suites: list[str]
    archs: list[str]
    folder: str
    suite_types: dict[str, str] = field(default_factory=dict)  # suite key -> registered type
    options: dict[str, dict] = field(default_factory=dict)  # factor -> its options (003's first/second, ...)
    suite_specs: dict[str, dict] = field(default_factory=dict)  # suite key -> its spec (n, seed: which test images)
    spec: dict = field(default_factory=dict)  # sweep.json with the suites evaluate added (empty without one)
    suite_words: dict[str, str] = field(default_factory=dict)  # suite key -> what it is (suites.json)

    @property
    def smoke(self) -> bool:
        """A smoke run: sweep.json's ``"smoke": true``, else a spec name ending in -smoke."""
        if "smoke" in self.spec:
            return bool(self.spec["smoke"])
        return str(self.spec.get("name", "")).endswith("-smoke")

    @property
    def search(self) -> dict | None:
        """The ``search`` section of a results folder written by ``robust-ray search``."""
        s = self.spec.get("search")
        return s if isinstance(s, dict) and s.get("objectives") else None

    @property
    def one_factor(self) -> bool:
        return self.type.endswith("one_factor")

    def at_baseline(self, trials: pd.DataFrame, factor: str) -> np.ndarray:
        """Rows whose ``factor`` column sits at its baseline.

        NaN counts as baseline: results.py writes NaN exactly where the plan left the
        factor untouched (level None) and the trial failed before reporting the level it
        achieved, so a failed trial still lands in its series and is counted as excluded.
        """
        # the planned level decides the series even where a step reads achieved levels
        col = trials.get(NOMINAL_PREFIX + factor, trials[factor]).to_numpy(float)
        base = self.baselines.get(factor)
        if base is None:
            return np.isnan(col)
        return np.isclose(col, base, rtol=0.0, atol=1e-9 * max(1.0, abs(base))) | np.isnan(col)

    def series(self, trials: pd.DataFrame, factor: str) -> np.ndarray:
        """Rows of ``factor``'s analysis: for a one_factor design, the rows where every other
        factor is at its baseline (the all-baseline row belongs to every series); else all."""
        mask = np.ones(len(trials), bool)
        if self.one_factor:
            for other in self.factors:
                if other != factor:
                    mask &= self.at_baseline(trials, other)
        return mask

    def clean(self, trials: pd.DataFrame) -> np.ndarray:
        """Rows trained on the untouched data: every factor at its baseline."""
        mask = np.ones(len(trials), bool)
        for f in self.factors:
            mask &= self.at_baseline(trials, f)
        return mask


@dataclass
class Results:
    """All trials (``ok`` marks the usable ones) and the ok trials' metrics, of one or more
    sweeps; ``sweep`` keys every frame and design."""

    trials: pd.DataFrame
    metrics: pd.DataFrame
    designs: dict[str, Design]
    files: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    conditions: pd.DataFrame = field(default_factory=pd.DataFrame)  # one row per sweep x suite x condition
    partial: dict[str, tuple[int, int]] = field(default_factory=dict)  # sweep -> (finished, planned) while unfinished
    # history.parquet of every sweep that has one: trial_id, epoch, train_loss, val_acc, ...,
    # with ``tidx`` (the trial's row in ``trials``) and ``sweep``; every trial, not only ok ones
    history: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def ok(self) -> pd.DataFrame:
        return self.trials[self.trials["ok"]]


def find_folders(where: str) -> list[Path]:
    """Folders holding a ``trials.parquet``: ``where`` itself, its subfolders, or a glob."""
    if any(c in where for c in "*?["):
        hits = sorted(glob.glob(where))
        folders = [Path(h).parent if Path(h).name == TRIALS_FILE else Path(h) for h in hits]
        folders = [f for f in folders if (f / TRIALS_FILE).is_file()]
        if not folders:
            raise ResultsError(f"{where}: no results match (no {TRIALS_FILE} in any matching folder)")
        return sorted(set(folders))
    path = Path(where)
    if path.is_file() and path.name == TRIALS_FILE:
        return [path.parent]
    if not path.exists():
        raise ResultsError(f"{where}: no such folder")
    if (path / TRIALS_FILE).is_file():
        return [path]
    folders = sorted(p.parent for p in path.glob(f"*/{TRIALS_FILE}"))
    if not folders:
        raise ResultsError(
            f"{where}: no results here ({TRIALS_FILE} is missing, in this folder and its subfolders);"
            " run `robust-ray run SWEEP.yaml --output FOLDER` first"
        )
    return folders


def check_schema(path: Path, required: list[str]) -> pa.Schema:
    """The file's Arrow schema, once it is known to be robust_ray's, not newer, and complete."""
    try:
        schema = pq.read_schema(path)
    except (pa.ArrowInvalid, OSError) as e:
        raise ResultsError(f"{path}: not a readable Parquet file ({e})") from None
    meta = schema.metadata or {}
    if SCHEMA_KEY not in meta:
        raise ResultsError(
            f"{path}: not a robust_ray results file (its Parquet metadata has no "
            f"{SCHEMA_KEY.decode()!r} key); was it written by another tool?"
        )
    try:
        version = int(meta[SCHEMA_KEY])
    except ValueError:
        raise ResultsError(f"{path}: unreadable {SCHEMA_KEY.decode()} value {meta[SCHEMA_KEY]!r}") from None
    if version > SCHEMA_VERSION:
        raise ResultsError(
            f"{path}: written with results schema {version}, newer than this robust_ray reads "
            f"({SCHEMA_VERSION}); upgrade robust_ray to analyse it"
        )
    missing = [c for c in required if c not in schema.names]
    if missing:
        raise ResultsError(f"{path}: missing column {missing[0]!r} (the results contract needs {', '.join(required)})")
    return schema


def _numeric(df: pd.DataFrame, cols: list[str], path: Path) -> None:
    for c in cols:
        if not pd.api.types.is_numeric_dtype(df[c]):
            raise ResultsError(f"{path}: column {c!r} must be numeric, not {df[c].dtype}")


def _factor_columns(trials: pd.DataFrame) -> list[str]:
    return [c for c in trials.columns if is_factor_column(c)]


NOMINAL_PREFIX = "nominal_"


def with_achieved_levels(trials: pd.DataFrame) -> pd.DataFrame:
    """``trials`` with each factor column holding the level measured on the composed
    training set (``achieved_<factor>``, where recorded and finite), the planned level kept
    as ``nominal_<factor>`` for the series and baseline masks."""
    t = trials.copy()
    for c in trials.columns:
        f = c.removeprefix(ACHIEVED_PREFIX)
        if c.startswith(ACHIEVED_PREFIX) and f in t.columns:
            t[NOMINAL_PREFIX + f] = t[f]
            t[f] = t[c].where(t[c].notna(), t[f])
    return t


def _mode(values: np.ndarray) -> float | None:
    values = values[~np.isnan(values)]
    if len(values) == 0:
        return None
    uniq, counts = np.unique(np.round(values, 9), return_counts=True)
    return float(uniq[np.argmax(counts)])


def read_spec(folder: Path) -> dict | None:
    path = folder / SPEC_FILE
    if not path.is_file():
        return None
    try:
        spec = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ResultsError(f"{path}: not readable JSON ({e})") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("design"), dict):
        raise ResultsError(f"{path}: not a sweep spec (no 'design' mapping)")
    return spec


def with_added_suites(spec: dict | None, suites_json: dict | None) -> dict | None:
    """sweep.json with the suites ``robust-ray evaluate`` added afterwards
    (:func:`~robust_ray.results.added_suites`): the analysis sees every suite the folder has rows of."""
    added = added_suites(suites_json)
    if spec is None or not added:
        return spec
    ran = spec.get("suites") or {}
    return {**spec, "suites": {**ran, **{k: v for k, v in added.items() if k not in ran}}}


def make_design(sweep: str, folder: Path, spec: dict | None, trials: pd.DataFrame, notes: list[str]) -> Design:
    """The sweep's design from its spec; baselines from the spec, else from the data.

    A ``null`` baseline in sweep.json means "the factor's identity level": its column value
    is then read from the data (one_factor: the most common value, since every other
    factor's rows hold it; other designs: 0.0 when present, else there is no clean level).
    """
    columns = _factor_columns(trials)
    if spec is not None:
        fspec = spec["design"].get("factors") or {}
        unknown = [f for f in fspec if f not in trials.columns]
        if unknown:
            raise ResultsError(
                f"{folder / TRIALS_FILE}: no column {unknown[0]!r} for the factor named in {folder / SPEC_FILE}"
            )
        dtype = str(spec["design"].get("type", "one_factor"))
        factors = {f: [float(v) for v in (fs.get("levels") or [])] for f, fs in fspec.items()}
        given = {f: fs.get("baseline") for f, fs in fspec.items()}
        suites = list(spec.get("suites") or {})
        archs = list(spec.get("architectures") or sorted(trials["arch"].unique()))
        fixed = {"levels", "baseline", "reference"}
        options = {f: {k: v for k, v in fs.items() if k not in fixed} for f, fs in fspec.items()}
    else:
        notes.append(f"{folder}: no {SPEC_FILE}; design inferred from the factor columns {columns}")
        factors = {f: sorted(trials[f].dropna().unique().tolist()) for f in columns}
        given = {f: None for f in columns}
        # one_factor when every row differs from the per-column mode in at most one factor
        modes = {f: _mode(trials[f].to_numpy(float)) for f in columns}
        off = sum(
            (~np.isclose(trials[f].to_numpy(float), modes[f] if modes[f] is not None else np.nan)).astype(int)
            for f in columns
        )
        dtype = "inferred: one_factor" if len(columns) > 1 and np.all(np.asarray(off) <= 1) else "inferred: grid"
        suites = sorted(c[4:] for c in trials.columns if c.startswith("acc_"))
        archs = sorted(trials["arch"].unique())
        options = {}
    baselines: dict[str, float | None] = {}
    finished = trials[~trials["status"].astype(str).isin(["failed", *UNFINISHED])] if "status" in trials else trials
    for f in factors:
        col = trials[f].to_numpy(float)
        if given.get(f) is not None:
            baselines[f] = float(given[f])
        elif dtype.endswith("one_factor") and len(factors) > 1 and np.isnan(finished[f].to_numpy(float)).any():
            # NaN in a finished trial is where the plan left the factor untouched (a sequence
            # factor such as sp>gaussian has no "off" level): that, not the most common level,
            # is its baseline. (A failed trial is NaN too, having reported no achieved level.)
            baselines[f] = None
        elif dtype.endswith("one_factor") and len(factors) > 1:
            baselines[f] = _mode(col)
        else:
            baselines[f] = 0.0 if np.any(np.isclose(col, 0.0)) else None
    sspec = {k: dict(v or {}) for k, v in (spec.get("suites") or {}).items()} if spec else {}
    types = {k: str(v.get("type") or k) for k, v in sspec.items()}
    return Design(sweep, dtype, factors, baselines, suites, archs, str(folder), types, options, sspec, dict(spec or {}))


def _read_folder(folder: Path, notes: list[str]) -> tuple[pd.DataFrame, pd.DataFrame, dict | None, list[str]]:
    tpath, mpath = folder / TRIALS_FILE, folder / METRICS_FILE
    check_schema(tpath, TRIAL_COLUMNS)
    trials = pd.read_parquet(tpath)
    trials = trials.drop(columns=list(alias_columns(trials.columns)))  # acc_mnist_c: SQL's copy of acc_mnist-c
    _numeric(trials, [c for c in ["seed", "train_acc", "val_acc"] if c in trials], tpath)
    files = [str(tpath)]
    if mpath.is_file():
        schema = check_schema(mpath, [c for c in METRIC_COLUMNS if c != "condition"])
        cols = [c for c in [*METRIC_COLUMNS, FLIPPED.name] if c in schema.names]  # flipped: optional
        # dictionary-encoded ids: millions of rows map to trials through their few categories
        metrics = pq.read_table(
            mpath, columns=cols, read_dictionary=[c for c in ("trial_id", "suite", "condition") if c in cols]
        ).to_pandas()
        _numeric(metrics, NUMERIC_METRIC_COLUMNS, mpath)
        if "condition" not in cols:  # written before suites had named conditions: one per level
            notes.append(f"{mpath}: no 'condition' column (an older results layout); each level is its own condition")
            names = {v: fmt_level(v) for v in metrics["level"].unique()}
            metrics.insert(2, "condition", metrics["level"].map(names).astype("category"))
        files.append(str(mpath))
    else:
        notes.append(f"{folder}: no {METRICS_FILE}; per-level analyses (mCV, severity curves, mCE, Pi) are skipped")
        metrics = pd.DataFrame(
            {
                c: pd.Series(dtype=t)
                for c, t in zip(METRIC_COLUMNS, ["category", "category", "category", "float", "float", "int"])
            }
        )
    if "in_spec" in trials and not trials["in_spec"].all():
        # trials of an earlier spec of this folder that its extended spec no longer holds
        gone = trials.loc[~trials["in_spec"].astype(bool), "trial_id"].astype(str)
        notes.append(
            f"{folder}: {len(gone)} trial(s) of an earlier spec of this folder left out (in_spec = false: "
            f"{', '.join(gone[:5])}{', ...' if len(gone) > 5 else ''})"
        )
        trials = trials[trials["in_spec"].astype(bool)].reset_index(drop=True)
        metrics = metrics[~metrics["trial_id"].astype(str).isin(set(gone))].reset_index(drop=True)
    return trials, metrics, read_spec(folder), files


def _suite_accuracy(trials: pd.DataFrame, metrics: pd.DataFrame, suites: list[str]) -> pd.DataFrame:
    """Add ``acc_<suite>`` (n-weighted over levels) from metrics where trials lacks it."""
    missing = [s for s in suites if f"acc_{s}" not in trials]
    if not missing or metrics.empty:
        return trials
    m = metrics[metrics["suite"].isin(missing)]
    w = m.assign(hit=m["accuracy"] * m["n"]).groupby(["trial_id", "suite"])[["hit", "n"]].sum()
    acc = (w["hit"] / w["n"]).unstack("suite").add_prefix("acc_")
    return trials.join(acc, on="trial_id")


def _row_index(metrics: pd.DataFrame, trials: pd.DataFrame, offset: int) -> np.ndarray:
    """Each metric row's position in the combined trials frame (-1: no such trial)."""
    ids = metrics["trial_id"]
    if not isinstance(ids.dtype, pd.CategoricalDtype):
        ids = ids.astype("category")
    where = pd.Index(trials["trial_id"].astype(str)).get_indexer(ids.cat.categories.astype(str))
    where = np.where(where >= 0, where + offset, -1)
    codes = ids.cat.codes.to_numpy()
    return np.where(codes >= 0, where[codes], -1)


def load_results(where: str) -> Results:
    """Read and validate every results folder under ``where`` (see the module doc).

    ``metrics`` keeps the ok trials' rows only and gains ``tidx``, the row of the trial in
    ``trials`` (unique across sweeps, cheap to group by), and ``sweep``.
    """
    notes: list[str] = []
    partial: dict[str, tuple[int, int]] = {}
    trial_frames, metric_frames, designs, files, cond_frames, history_frames = [], [], {}, [], [], []
    offset = 0
    for folder in find_folders(str(where)):
        trials, metrics, spec, fs = _read_folder(folder, notes)
        files += fs
        suites_json = read_suites(folder)
        later = set(added_suites(suites_json)) - set((spec or {}).get("suites") or {})  # added by evaluate
        spec = with_added_suites(spec, suites_json)
        names = trials["sweep"].dropna().unique().tolist()
        name = str(spec.get("name")) if spec and spec.get("name") else (names[0] if names else folder.name)
        label = name if name not in designs else f"{name}@{folder}"
        suites = list(spec.get("suites") or {}) if spec else []
        trials = _suite_accuracy(trials, metrics, suites).reset_index(drop=True)
        for s in suites:  # a suite no trial reported (all failed) still gets its rows, with n = 0
            if f"acc_{s}" not in trials:
                trials[f"acc_{s}"] = np.nan
        trials = trials.assign(sweep=label, ok=trials["status"].astype(str).eq("ok"))
        tidx = _row_index(metrics, trials, offset)
        keep = tidx >= 0
        keep[keep] = trials["ok"].to_numpy()[tidx[keep] - offset]
        metrics = metrics[keep].assign(tidx=tidx[keep], sweep=label)
        designs[label] = make_design(label, folder, spec, trials, notes)
        unfinished = int(trials["status"].astype(str).isin(UNFINISHED).sum())
        if unfinished:
            partial[label] = (len(trials) - unfinished, len(trials))
            notes.append(f"partial: {len(trials) - unfinished} of {len(trials)} trials of {label} have finished "
                         "(the sweep is running or was stopped); the others are left out")  # fmt: skip
        if suites_json is None and not metrics.empty:
            notes.append(f"{folder}: no suites.json; conditions and their parameters are read from the condition names")
        elif suites_json is not None:
            files.append(str(folder / SUITES_FILE))
            for key, s in suites_json.items():
                designs[label].suite_types.setdefault(key, str(s.get("type") or key))
                designs[label].suite_words[key] = str(s.get("description") or "") + (
                    " (added by robust-ray evaluate)" if key in later else ""
                )
        cond_frames.append(condition_table(label, suites_json, designs[label].suite_types, metrics))
        if (folder / HISTORY_FILE).is_file():
            h = pd.read_parquet(folder / HISTORY_FILE)
            pos = pd.Index(trials["trial_id"].astype(str)).get_indexer(h["trial_id"].astype(str))
            history_frames.append(h[pos >= 0].assign(tidx=pos[pos >= 0] + offset, sweep=label))
            files.append(str(folder / HISTORY_FILE))
        trial_frames.append(trials)
        metric_frames.append(metrics)
        offset += len(trials)
    trials = pd.concat(trial_frames, ignore_index=True) if len(trial_frames) > 1 else trial_frames[0]
    metrics = pd.concat(metric_frames, ignore_index=True) if len(metric_frames) > 1 else metric_frames[0]
    if trials.empty:
        raise ResultsError(f"{where}: the results hold no trials")
    for col in ("suite", "sweep", "condition"):
        if not isinstance(metrics[col].dtype, pd.CategoricalDtype):
            metrics[col] = metrics[col].astype("category")
    conditions = pd.concat(cond_frames, ignore_index=True)
    history = pd.concat(history_frames, ignore_index=True) if history_frames else pd.DataFrame()
    return Results(trials, metrics.reset_index(drop=True), designs, files, notes, conditions, partial, history)


def fmt_level(v: float) -> str:
    """A level as a short label (2.0 -> '2', 0.25 -> '0.25')."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return f"{v:g}"
