"""Suites as lists of named conditions: what each test set of a sweep is.

A suite is a list of conditions (``robust_ray.suites``); several may share a level
(``corruptions``: every corruption at severity 3; ``pixel``: every few-pixel setting at
n = 16). ``suites.json`` beside the results lists them with their parameters (002's p, r,
a; 004's corruption and severity; 003's k and stages). :func:`condition_table` flattens it
into one row per (sweep, suite, condition); without ``suites.json`` (older results) the
conditions are read from metrics.parquet and the parameters from the condition names.

Suites come in three kinds, which decides how they are analysed:

- ``clean``: the test set itself (one condition);
- ``levels``: one perturbation at several levels, one condition per level (mnist-c,
  mnist-a, any perturbation used as a suite): accuracy-vs-level curves make sense;
- ``named``: conditions that share levels or mix perturbations (corruptions, pixel,
  two-factor-69): analysed per condition, never averaged over a level.

Nothing here imports torch.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..results import SUITES_FILE, parse_suites
from .errors import ResultsError

CLEAN_TYPES = {"clean", "mnist-test"}
NAMED_TYPES = {"corruptions", "pixel", "two-factor-69"}
PARAM_COLUMNS = [
    "experiment",
    "n_pixels",
    "p",
    "r",
    "a",
    "corruption",
    "severity",
    "k",
    "first",
    "first_level",
    "second",
    "second_level",
]
COLUMNS = ["sweep", "suite", "type", "kind", "condition", "level", "perturbation", "plevel", *PARAM_COLUMNS]


def read_suites(folder: Path) -> dict | None:
    """``suites.json`` of a results folder (None when the sweep predates it)."""
    path = folder / SUITES_FILE
    if not path.is_file():
        return None
    try:
        text = path.read_text()
    except OSError as e:
        raise ResultsError(f"{path}: not readable ({e})") from None
    return parse_suites(text, str(path), ResultsError)


_PIXEL = re.compile(r"^n(\d+)-(set|shift)-r([\d.]+)-a([\d.]+)$")


def _pixel_params(name: str) -> dict:
    """002's terms from a few-pixel condition name (``n4-shift-r0.078-a1.000``); p needs the
    image size, which the name does not hold. The experiment is recovered as far as the name
    allows: shift mode -> ``range{R}`` (R = r x 255 / 2, as the suite names it); a < 1 ->
    ``area-a{a}`` (the suite's ``area{side}`` counts the side in 224-pixel units, which
    rounding to whole pixels on small images loses)."""
    m = _PIXEL.match(name)
    if not m:
        return {}
    n, mode, r, a = int(m.group(1)), m.group(2), float(m.group(3)), float(m.group(4))
    if mode == "shift":
        exp = f"range{round(r * 255 / 2)}"
    elif a < 1:
        exp = f"area-a{a:.3f}"
    else:
        exp = "count"
    return {"experiment": exp, "n": n, "r": r, "a": a}


def infer_params(stype: str, name: str, level: float) -> dict:
    """Parameters of a condition from its name, for results without suites.json."""
    if stype == "corruptions" and "/" in name:
        return {"corruption": name.split("/")[0], "severity": level}
    if stype == "pixel":
        return _pixel_params(name)
    if stype == "two-factor-69":
        return {"k": level}
    return {}


def _row(sweep: str, suite: str, stype: str, c: dict) -> dict:
    params = dict(c.get("params") or {})
    if not params:
        params = infer_params(stype, str(c["name"]), float(c["level"]))
    row = {
        "sweep": sweep,
        "suite": suite,
        "type": stype,
        "condition": str(c["name"]),
        "level": float(c["level"]),
        "perturbation": c.get("perturbation"),
        "plevel": float(c.get("plevel") or 0.0),
    }
    row.update({k: params.get(k) for k in PARAM_COLUMNS if k in params})
    if "n" in params:
        row["n_pixels"] = params["n"]
    return row


def condition_table(sweep: str, suites: dict | None, types: dict[str, str], metrics: pd.DataFrame) -> pd.DataFrame:
    """One row per condition of every suite of ``sweep``: from ``suites`` (suites.json) when
    given, else the (suite, condition, level) triples of ``metrics`` with parameters read
    from the names. ``types`` maps suite key -> suite type (sweep.json)."""
    rows = []
    if suites is not None:
        for key, s in suites.items():
            stype = str(s.get("type") or types.get(key) or key)
            rows += [_row(sweep, key, stype, c) for c in s["conditions"]]
    elif not metrics.empty:
        seen = metrics.groupby(["suite", "condition"], observed=True)["level"].first().reset_index()
        for r in seen.itertuples(index=False):
            stype = types.get(str(r.suite), str(r.suite))
            # without suites.json the perturbation is unknown; only a clean-named condition is
            # known to be the unchanged images
            unchanged = str(r.condition) in ("clean", "CLEAN")
            c = {"name": r.condition, "level": r.level, "perturbation": None if unchanged else "unknown"}
            rows.append(_row(sweep, str(r.suite), stype, c))
    df = pd.DataFrame(rows).reindex(columns=COLUMNS)
    for c in ("level", "plevel", "n_pixels", "p", "r", "a", "severity", "k", "first_level", "second_level"):
        df[c] = pd.to_numeric(df[c], errors="coerce").astype(float)
    df["kind"] = df["suite"].map(_kinds(df)) if len(df) else pd.Series(dtype=str)
    return df


def _kinds(df: pd.DataFrame) -> dict[str, str]:
    out = {}
    for suite, g in df.groupby("suite", sort=False):
        stype = g["type"].iloc[0]
        perts = set(g["perturbation"].dropna())
        if stype in CLEAN_TYPES or (len(g) == 1 and g["condition"].iloc[0] == "clean"):
            out[suite] = "clean"
        elif stype not in NAMED_TYPES and len(perts) <= 1 and g["level"].is_unique:
            out[suite] = "levels"
        else:
            out[suite] = "named"
    return out


def condition_index(metrics: pd.DataFrame, conds: pd.DataFrame) -> np.ndarray:
    """Each metric row's position in ``conds`` (the conditions of one suite; names unique),
    -1 where suites.json lacks it. Goes through the condition categories, not a merge, so
    it stays cheap on millions of rows."""
    cond = metrics["condition"]
    if not isinstance(cond.dtype, pd.CategoricalDtype):
        cond = cond.astype("category")
    pos = pd.Index(conds["condition"]).get_indexer(cond.cat.categories.astype(str))
    codes = cond.cat.codes.to_numpy()
    return np.where(codes >= 0, pos[np.maximum(codes, 0)], -1) if len(pos) else np.full(len(codes), -1)


def lookup(metrics: pd.DataFrame, conds: pd.DataFrame, cols: list[str]) -> dict[str, np.ndarray]:
    """Columns ``cols`` of each metric row's condition (NaN/None where suites.json lacks it)."""
    idx = condition_index(metrics, conds)
    out = {}
    for c in cols:
        values = conds[c].to_numpy()
        values = np.append(values, np.nan) if values.dtype.kind == "f" else np.append(values.astype(object), None)
        out[c] = values[idx]  # idx -1 picks the filler appended last
    return out


# --- 003's names of training sets ---------------------------------------------------------

_TOKEN = {"salt_pepper": "SP", "gaussian_var": "GA", "sp": "SP", "gaussian": "GA"}


def _token(stage: str, level: float) -> str | None:
    """One stage in 003 Table 4 notation: SP0.1, GA0.2, RR30 (clockwise), RL30, RO0."""
    if stage in ("rotation",):
        if level == 0:
            return "RO0"
        return f"RR{level:g}" if level > 0 else f"RL{-level:g}"
    prefix = _TOKEN.get(stage)
    return f"{prefix}{level:g}" if prefix else None


def name_003(factor: str, level: float, options: dict | None = None) -> str | None:
    """A training set in 003's notation: ``salt_pepper`` 0.1 -> "SP0.1", ``rotation`` -30 ->
    "RL30", ``sp>gaussian`` at 0.1 with ``first: 0.1`` -> "SP0.1GA0.1"; None when the
    factor is not one of 003's perturbations."""
    options = options or {}
    if ">" in factor:
        a, b = factor.split(">", 1)
        if options.get("first") is not None:
            la, lb = float(options["first"]), level
        elif options.get("second") is not None:
            la, lb = level, float(options["second"])
        else:
            return None
        ta, tb = _token(a, la), _token(b, lb)
        return ta + tb if ta and tb else None
    return _token(factor, level)
