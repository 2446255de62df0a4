"""Published reference tables (CSV) and their comparison with a reproduction.

Format (one row per published number; ``analysis/README.md`` documents it):

    table,analysis,factor,arch,suite,segment,statistic,value[,sweep][,step][,note]
    000-T2,correlation,gaussian_l2,lenet5,mnist-test,,r,0.275

``table`` names the source (e.g. ``000-T2`` = paper 000, Table 2); ``analysis``,
``factor``, ``arch``, ``suite``, ``segment`` and ``statistic`` are the identifiers of
``tables/statistics.csv`` (so a row matches the statistic robust_ray computes); ``value`` is
the published number; ``sweep`` and ``step`` (optional) restrict the match to one sweep
and to the recipe step with that ``id`` (else the first step of that analysis matches).

Agreement: for r and R, the same sign and the same 000 §2.4 strength band (the ``sign``
and ``strength`` columns say each separately); for p (and pearson_p), the same verdict at
the recipe's alpha, with our p exact for n <= 10 (:mod:`.stats`); for everything else, the relative difference. An optional ``note`` column
(where the number is in the paper, doubts about it) is carried into the comparison.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .errors import RecipeError
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
        raise RecipeError(
            str(path), "", f"missing column {missing[0]!r} (a reference table needs {', '.join(REQUIRED)})"
        )
    values = pd.to_numeric(ref["value"].str.strip(), errors="coerce")
    bad = ref.index[values.isna() & ref["value"].str.strip().ne("")]
    if len(bad):
        i = int(bad[0])
        raise RecipeError(str(path), f"row {i + 2}", f"value {ref.loc[i, 'value']!r} is not a number")
    ref = ref.assign(value=values)
    for optional in ("sweep", "step", "note"):
        if optional not in ref:
            ref[optional] = ""
    return ref


CORRELATIONS = ("r", "R", "pearson_r")


def _sign_band(stat: str, pub: float, ours: float) -> tuple[str, str]:
    """(sign, band) columns for a correlation: "same"/"differs" and "same (high)" or
    "published high, ours moderate"; empty for other statistics or missing values."""
    if stat not in CORRELATIONS or not (np.isfinite(pub) and np.isfinite(ours)):
        return "", ""
    sign = "same" if np.sign(pub) == np.sign(ours) else "differs"
    b_pub, b_ours = band(pub), band(ours)
    return sign, (f"same ({b_pub})" if b_pub == b_ours else f"published {b_pub}, ours {b_ours}")


def _agree(stat: str, pub: float, ours: float, alpha: float) -> str:
    if not (np.isfinite(pub) and np.isfinite(ours)):
        return "not comparable"
    if stat in ("r", "R", "pearson_r"):
        same = band(pub) == band(ours) and np.sign(pub) == np.sign(ours)
        return "same band" if same else f"differs: published {band(pub)}, ours {band(ours)}"
    if stat in ("p", "pearson_p"):
        a, b = pub < alpha, ours < alpha
        return (
            "same verdict"
            if a == b
            else f"differs: published {'<' if a else '>='} {alpha}, ours {'<' if b else '>='} {alpha}"
        )
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
        ids = {k: r[k] for k in ["table", *KEYS]}
        if m.empty:
            rows.append(
                {
                    **ids,
                    "published": r["value"],
                    "reproduced": np.nan,
                    "difference": np.nan,
                    "n": np.nan,
                    "sign": "",
                    "strength": "",
                    "agreement": "not reproduced (no such statistic in these results)",
                    "note": r["note"],
                }
            )
            continue
        hit = m.iloc[0]
        val = float(hit["value"])
        sign, band_ = _sign_band(r["statistic"], r["value"], val)
        agreement = _agree(r["statistic"], r["value"], val, alpha)
        if not np.isfinite(val) and str(hit.get("note", "") or ""):  # e.g. r of a segment with fewer than 3 levels
            agreement += f" (ours undefined: {hit['note']})"
        rows.append(
            {
                **ids,
                "published": r["value"],
                "reproduced": val,
                "difference": val - r["value"],
                "n": int(hit["n"]),
                "sign": sign,
                "strength": band_,
                "agreement": agreement,
                "note": r["note"],
            }
        )
    return pd.DataFrame(rows, columns=COMPARISON)


COMPARISON = ["table", *KEYS, "published", "reproduced", "difference", "n", "sign", "strength", "agreement", "note"]


def read_comparison(path: Path) -> pd.DataFrame:
    """A comparison table written by ``analyze`` (``tables/<recipe>__reference.csv``)."""
    t = pd.read_csv(
        path,
        dtype={k: str for k in ["table", *KEYS, "sign", "strength", "agreement", "note"]},
        keep_default_na=False,
        na_values={"published": [""], "reproduced": [""], "difference": [""], "n": [""]},
    )
    return t


def _num(v: float) -> str:
    if not np.isfinite(v):
        return "-"
    return f"{v:.3g}" if v == 0 or 1e-3 <= abs(v) < 1e4 else f"{v:.2e}"


def format_comparison(table: pd.DataFrame, title: str = "") -> str:
    """The comparison as plain text, one line per published number these results have a
    statistic for (ours "-" where it is undefined): where it comes from, what it is, our
    value, the published one, and whether sign and strength band (r, R) or the verdict (p) agree;
    the numbers the results hold no statistic for are counted at the end."""
    missing = table[table["agreement"].astype(str).str.startswith("not reproduced")]
    done = table.drop(missing.index)
    lines = [title] if title else []
    if len(done):
        what = done.apply(
            lambda r: " ".join(
                str(r[k]) for k in ("analysis", "factor", "arch", "suite", "segment", "statistic") if str(r[k])
            ),
            axis=1,
        )
        cols = {
            "table": done["table"].astype(str),
            "statistic": what,
            "ours": done["reproduced"].map(_num),
            "paper": done["published"].map(_num),
            "sign": done["sign"].replace("", "-"),
            "strength": done["strength"].replace("", "-"),
            "agreement": done["agreement"].astype(str),
        }
        widths = {k: max(len(k), *(len(v) for v in col)) for k, col in cols.items()}
        lines.append("  ".join(k.ljust(widths[k]) for k in cols).rstrip())
        for i in range(len(done)):
            lines.append("  ".join(str(col.iloc[i]).ljust(widths[k]) for k, col in cols.items()).rstrip())
    if len(missing):
        per = ", ".join(f"{t} {n}" for t, n in missing["table"].value_counts(sort=False).items())
        lines.append(f"{len(missing)} published number(s) not in these results ({per}).")
    corr = done[done["statistic"].isin(CORRELATIONS) & done["sign"].ne("")]
    if len(corr):
        lines.append(
            f"r/R: sign agrees for {int((corr['sign'] == 'same').sum())} of {len(corr)}, "
            f"strength band for {int(corr['strength'].str.startswith('same').sum())} of {len(corr)}."
        )
    return "\n".join(lines)
