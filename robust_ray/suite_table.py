"""What the suites of a spec are, for readers of the results: ``suites.json`` (each suite's
type, description and conditions) and the one-line description of a suite. Computed from
the spec; nothing is built."""

from __future__ import annotations

import dataclasses

from . import data
from .spec import SweepSpec
from .suites import suite_def


def suite_conditions(spec: SweepSpec) -> dict[str, dict]:
    """Per suite key: its type and its conditions (name, level, perturbation, parameters such
    as 002's p, r, a or 004's corruption and severity): what ``analyze`` needs beyond the
    ``condition`` column of metrics.parquet. Computed from the spec; nothing is built."""
    shape = data.DATASETS.get(spec.dataset.name).shape
    out = {}
    for key, ss in spec.suites.items():
        sdef = suite_def(spec.suite_type(key))
        if sdef.whitebox is not None:
            from .whitebox import conditions as whitebox_conditions

            conds = whitebox_conditions(sdef.whitebox, ss.options)
        else:
            conds = sdef.conditions(list(ss.levels or sdef.default_levels), shape)
        out[key] = {"type": sdef.name, "description": describe_suite(sdef, ss),
                    "conditions": [dataclasses.asdict(c) for c in conds]}  # fmt: skip
    return out


def describe_suite(sdef, ss) -> str:
    """What a suite is, in words a reader of the field expects (``white-box PGD-L∞ eps 0.1,
    0.2, 0.3, 10 steps, 1000 images``), not only its key."""
    if sdef.whitebox is None:
        levels = list(ss.levels or sdef.default_levels or [])
        said = sdef.description
        if not sdef.clean and levels:
            shown = ", ".join(f"{v:g}" for v in levels) if len(levels) <= 8 else f"{levels[0]:g} ... {levels[-1]:g}"
            said += f"; {len(levels)} level{'s' * (len(levels) != 1)} ({shown})"
        return said + (f"; {ss.n} test images (stratified, seed {ss.seed})" if ss.n else "; the whole test split")
    from .whitebox import describe

    return describe(sdef.whitebox, ss.options)
