"""Where two specs differ, as key paths (``design.factors.gaussian_l2.levels``)."""

from __future__ import annotations

import json
from typing import Any


def changed_paths(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Key paths at which ``new`` differs from ``old`` (JSON-like values): a key added,
    removed or changed in a mapping is named itself; a list that differs is named whole
    (a changed list of levels reads better as ``levels`` than as ``levels[3]``), except a
    list of mappings of equal length, whose items are compared one by one."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for k in sorted(set(old) | set(new), key=str):
            path = f"{prefix}.{k}" if prefix else str(k)
            if k not in old or k not in new:
                out.append(path)
            else:
                out += changed_paths(old[k], new[k], path)
        return out
    if (isinstance(old, list) and isinstance(new, list) and len(old) == len(new)
            and all(isinstance(v, dict) for v in old + new)):  # fmt: skip
        return [p for i, (a, b) in enumerate(zip(old, new)) for p in changed_paths(a, b, f"{prefix}[{i}]")]
    return [] if old == new else [prefix or "(the whole spec)"]


def describe_change(old: Any, new: Any, limit: int = 6) -> str:
    """``a.b (1 -> 2), c.d`` for a message: each changed path, with old and new values
    where they are short."""

    def at(d: Any, path: str) -> Any:
        for part in path.replace("[", ".[").split("."):
            if not part:
                continue
            if part.startswith("["):
                d = d[int(part[1:-1])]
            elif isinstance(d, dict) and part in d:
                d = d[part]
            else:
                return _MISSING
        return d

    items = []
    paths = changed_paths(old, new)
    for path in paths[:limit]:
        a, b = at(old, path), at(new, path)
        shown = f"{_short(a)} -> {_short(b)}"
        items.append(f"{path} ({shown})" if len(shown) <= 60 else path)
    more = f" and {len(paths) - limit} more" if len(paths) > limit else ""
    return ", ".join(items) + more


class _Missing:
    def __repr__(self) -> str:
        return "absent"


_MISSING = _Missing()


def _short(v: Any) -> str:
    return repr(v) if v is _MISSING else (v if isinstance(v, str) else json.dumps(v))
