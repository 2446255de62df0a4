"""Published reference tables (CSV) and their comparison with a reproduction.

Format (one row per published number; ``analysis/README.md`` documents it):

    table,analysis,factor,arch,suite,segment,statistic,value[,sweep][,step][,note]
    000-T2,correlation,gaussian_l2,lenet5,mnist-test,,r,0.275

``table`` names the source (e.g. ``000-T2`` = paper 000, Table 2); ``analysis``,
``factor``, ``arch``, ``suite``, ``segment`` and ``statistic`` are the identifiers of
``tables/statistics.csv`` (so a row matches the statistic robust_ray computes); ``value`` is
the published number; ``sweep`` and ``step`` (optional) restrict the match to one sweep
and to the recipe step with that ``id`` (else the first step of that analysis matches).

Agreement: for r and R, the same sign and the same 000 §2.4 band; for p (and pearson_p),
the same verdict at the recipe's alpha; for everything else, the relative difference.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .recipes import RecipeError
from .stats import band

KEYS = ["analysis", "factor", "arch", "suite", "segment", "statistic"]
REQUIRED = ["table", *KEYS, "value"]


def load_reference(path: Path, recipe_file: str | None = None) -> pd.DataFrame:
    """Read and check a reference CSV: every required column, a numeric ``value``."""
    try:
        ref = pd.read_csv(path, dtype=str, keep_default_na=False, comment="#")
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as e:
        raise RecipeError(str(path), "", f"not a readable CSV ({e})") from None
    missing = [c for c in REQUIRED if c not in ref.columns]
    if missing:
        raise RecipeError(str(path), "", f"missing column {missing[0]!r} (a reference table needs {', '.join(REQUIRED)})")
    values = pd.to_numeric(ref["value"].str.strip(), errors="coerce")
    bad = ref.index[values.isna() & ref["value"].str.strip().ne("")]
    if len(bad):
        i = int(bad[0])
        raise RecipeError(str(path), f"row {i + 2}", f"value {ref.loc[i, 'value']!r} is not a number")
    ref = ref.assign(value=values)
    for optional in ("sweep", "step"):
        if optional not in ref:
            ref[optional] = ""
    return ref


def _agree(stat: str, pub: float, ours: float, alpha: float) -> str:
    if not (np.isfinite(pub) and np.isfinite(ours)):
        return "not comparable"
    if stat in ("r", "R", "pearson_r"):
        same = band(pub) == band(ours) and np.sign(pub) == np.sign(ours)
        return "same band" if same else f"differs: published {band(pub)}, ours {band(ours)}"
    if stat in ("p", "pearson_p"):
        a, b = pub < alpha, ours < alpha
        return "same verdict" if a == b else f"differs: published {'<' if a else '>='} {alpha}, ours {'<' if b else '>='} {alpha}"
    rel = abs(ours - pub) / abs(pub) if pub else abs(ours - pub)
    return f"relative difference {rel:.1%}"


def compare(ref: pd.DataFrame, stats: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """One row per published number: the reproduced value, the difference, n, agreement."""
    ours = stats.assign(**{k: stats[k].fillna("").astype(str) for k in KEYS})
    rows = []
    for _, r in ref.iterrows():
        m = ours
        for k in KEYS:
            m = m[m[k] == str(r[k])]
        if r["sweep"]:
            m = m[m["sweep"].str.split("@").str[0] == r["sweep"]]
        if r["step"]:
            m = m[m["step"] == r["step"]]
        if m.empty:
            rows.append({**{k: r[k] for k in ["table", *KEYS]}, "published": r["value"], "reproduced": np.nan,
                         "difference": np.nan, "n": np.nan, "agreement": "not reproduced (no such statistic in these results)"})
            continue
        hit = m.iloc[0]
        val = float(hit["value"])
        rows.append({**{k: r[k] for k in ["table", *KEYS]}, "published": r["value"], "reproduced": val,
                     "difference": val - r["value"], "n": int(hit["n"]), "agreement": _agree(r["statistic"], r["value"], val, alpha)})
    return pd.DataFrame(rows)
