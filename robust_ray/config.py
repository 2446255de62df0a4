"""The old home of the spec layer, kept so ``from robust_ray.config import ...`` still works.

The models live in :mod:`robust_ray.spec` (a leaf), loading in :mod:`robust_ray.loader`.
The loader's names are imported on first use: it pulls in the registries (torch), and the
models alone should stay light to import.
"""

from __future__ import annotations

from typing import Any

from .spec import (  # noqa: F401  (re-exports)
    MAX_LEVELS,
    Constraint,
    DatasetSpec,
    DesignSpec,
    EarlyStopping,
    ExecutionSpec,
    FactorSpec,
    Finite,
    Objective,
    ReferenceSpec,
    Resources,
    SearchRange,
    SearchSpec,
    Seed,
    Strict,
    SuiteSpec,
    SweepSpec,
    TrainingSpec,
    expand_levels,
    key_path,
    no_duplicates,
)

_LOADER = {"load_spec", "parse_spec", "parse_smoke", "smoke_variant", "read_yaml", "SMOKE_KEY", "MAX_DEPTH"}


def __getattr__(name: str) -> Any:
    if name in _LOADER:
        from . import loader

        return getattr(loader, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
