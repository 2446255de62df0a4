"""Which suites and factors of a sweep a step reads: shared by the default recipe, the
recipe checks and the steps themselves."""

from __future__ import annotations

from .load import Results


def sweep_suites(
    results: Results, d, stype: str | None = None, kind: str | None = None, order: list[str] | None = None
) -> list[str]:
    """Suites of sweep ``d`` with metrics, of a registered type and/or kind, in suite order."""
    c = results.conditions
    if c.empty:
        return []
    c = c[c["sweep"] == d.sweep]
    if stype is not None:
        c = c[c["type"] == stype]
    if kind is not None:
        c = c[c["kind"] == kind]
    present = list(dict.fromkeys(c["suite"]))
    order = order or d.suites
    return [s for s in order if s in present] + [s for s in present if s not in order]


def clean_suites(results: Results, d) -> list[str]:
    """The sweep's clean suites that trials.parquet has an accuracy column for."""
    return [s for s in sweep_suites(results, d, kind="clean") if f"acc_{s}" in results.trials]


def overlap_factors(d, results: Results, suite: str | None = None) -> dict[str, str]:
    """corruption name -> its ``corruption:<name>`` training factor, for the corruptions of
    the corruptions suite (``suite``, default the sweep's first) that the design trains on."""
    suites = [suite] if suite else sweep_suites(results, d, "corruptions")
    if not suites:
        return {}
    c = results.conditions
    names = c[(c["sweep"] == d.sweep) & (c["suite"] == suites[0])]["corruption"].dropna().unique()
    return {n: f"corruption:{n}" for n in names if f"corruption:{n}" in d.factors}
