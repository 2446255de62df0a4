"""From a spec to a plan: the trials (design rows x architectures x seeds) and the
datasets they need, each dataset named by a content key so it is built once."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

import numpy as np

from . import __version__
from .config import SweepSpec
from .data import DATASETS
from .designs import DESIGNS
from .factors import AugmentOptions, factor_def
from .seeding import derive_seed
from .suites import suite_def


@dataclass(frozen=True)
class DatasetKey:
    """What a dataset is made of; equal keys mean equal bytes, so it is built once."""

    kind: str  # "pool" (augment factor at a level) or "suite"
    params: tuple  # sorted (name, value) pairs, JSON-able

    @classmethod
    def of(cls, kind: str, **params) -> "DatasetKey":
        return cls(kind, tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in params.items())))

    @property
    def p(self) -> dict:
        return dict(self.params)

    @property
    def digest(self) -> str:
        blob = json.dumps([__version__, self.kind, self.params], sort_keys=True, default=str)
        return f"{self.kind}-{hashlib.sha256(blob.encode()).hexdigest()[:16]}"


@dataclass(frozen=True)
class TrialPlan:
    trial_id: str
    arch: str
    seed: int
    levels: dict[str, float | None]
    pools: dict[str, str] = field(default_factory=dict)  # factor -> dataset digest
    suites: dict[str, str] = field(default_factory=dict)  # suite key -> dataset digest

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Plan:
    trials: list[TrialPlan]
    datasets: dict[str, DatasetKey]  # digest -> key
    where: dict[str, str]  # digest -> the spec key it comes from, for error messages

    def nbytes(self, spec: SweepSpec) -> dict[str, int]:
        return {d: estimate_bytes(spec, k) for d, k in self.datasets.items()}


def pool_key(spec: SweepSpec, factor: str, level: float, seed: int) -> DatasetKey:
    opts = AugmentOptions.model_validate(spec.design.factors[factor].model_extra or {})
    return DatasetKey.of(
        "pool",
        dataset=spec.dataset.name,
        perturbation=factor,
        level=float(level),
        per_class=opts.per_class,
        # one seed per (trial seed, factor): all levels perturb the same images with the
        # same noise draw, so levels differ only by the level (common random numbers)
        seed=derive_seed(seed, factor),
    )


def suite_key(spec: SweepSpec, key: str) -> DatasetKey:
    ss, sdef = spec.suites[key], suite_def(spec.suite_type(key))
    return DatasetKey.of(
        "suite",
        dataset=spec.dataset.name,
        type=sdef.name,
        levels=[float(v) for v in (ss.levels or sdef.default_levels)],
        n=ss.n,
        seed=ss.seed,
    )


def level_path(spec: SweepSpec, factor: str, level: float) -> str:
    levels = spec.design.factors[factor].levels
    at = f"levels[{levels.index(level)}]" if level in levels else "baseline"
    return f"design.factors.{factor}.{at}"


def design_rows(spec: SweepSpec) -> list[dict[str, float | None]]:
    factors = {}
    for name, fs in spec.design.factors.items():
        baseline = fs.baseline if "baseline" in fs.model_fields_set else factor_def(name).identity
        factors[name] = (list(fs.levels), baseline)
    return DESIGNS.get(spec.design.type)(factors, [dict(r) for r in spec.design.rows])


def make_plan(spec: SweepSpec) -> Plan:
    datasets: dict[str, DatasetKey] = {}
    where: dict[str, str] = {}

    def need(key: DatasetKey, path: str) -> str:
        datasets.setdefault(key.digest, key)
        where.setdefault(key.digest, path)
        return key.digest

    suites = {k: need(suite_key(spec, k), f"suites.{k}") for k in spec.suites}
    trials = []
    for row in design_rows(spec):
        for arch in spec.architectures:
            for seed in spec.seeds:
                pools = {
                    f: need(pool_key(spec, f, lv, seed), level_path(spec, f, lv))
                    for f, lv in row.items()
                    if lv and factor_def(f).stage == "augment"
                }
                trials.append(TrialPlan(f"t{len(trials):04d}", arch, seed, dict(row), pools, suites))
    return Plan(trials, datasets, where)


def estimate_bytes(spec: SweepSpec, key: DatasetKey) -> int:
    """Bytes a dataset will take in the object store, from the registry's sizes alone."""
    info = DATASETS.get(spec.dataset.name)
    pixels = int(np.prod(info.shape))
    p = key.p
    if key.kind == "pool":
        n, per_pixel = p["per_class"] * info.num_classes, 2
    else:
        n_test = min(p["n"] or info.n_test, info.n_test)
        clean = suite_def(p["type"]).perturbation is None
        n, per_pixel = n_test * len(p["levels"]), 1 if clean else 2
    return n * (pixels * per_pixel + 8 + 4)
