"""From a spec to a plan: the trials (design rows x architectures x seeds) and the
datasets they need, each dataset named by a content key so it is built once."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from dataclasses import asdict, dataclass, field

from . import __version__
from .designs import DESIGNS
from .factors import factor_def, perturbation_options
from .keys import BUILDERS, DatasetKey, ModelKey, PoolKey, SuiteKey, code_digest, source_digest  # noqa: F401  (re-exported)
from .perturb import PERTURBATIONS
from .seeding import derive_seed
from .spec import SweepSpec
from .suites import suite_def


@dataclass(frozen=True)
class TrialPlan:
    trial_id: str
    arch: str
    seed: int
    levels: dict[str, float | None]
    recipe: str = "standard"
    recipe_options: dict = field(default_factory=dict)
    pools: dict[str, str] = field(default_factory=dict)  # factor -> dataset digest
    suites: dict[str, str] = field(default_factory=dict)  # suite key -> dataset digest
    key: str = ""  # what the trained model is made of (:func:`trial_key`); equal keys, same model

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Plan:
    trials: list[TrialPlan]
    datasets: dict[str, DatasetKey]  # digest -> key
    where: dict[str, str]  # digest -> the spec key it comes from, for error messages

    def nbytes(self, spec: SweepSpec) -> dict[str, int]:
        return {d: estimate_bytes(spec, k) for d, k in self.datasets.items()}

    def subset(self, trials: list[TrialPlan]) -> Plan:
        """The plan of ``trials`` only: the datasets they use and the reference models those
        are built against (an extend builds nothing its kept trials already used)."""
        used = {d for t in trials for d in (*t.pools.values(), *t.suites.values())}
        used |= {self.datasets[d].p["reference"] for d in list(used) if self.datasets[d].p.get("reference")}
        return Plan(list(trials), {d: k for d, k in self.datasets.items() if d in used},
                    {d: w for d, w in self.where.items() if d in used})  # fmt: skip


def model_key(spec: SweepSpec, arch: str, seed: int) -> DatasetKey:
    """The clean-trained reference model of ``arch`` and ``seed`` (the standard recipe with
    the sweep's training settings): what FGSM pools and suites attack (000 §2.2.1, §2.3)."""
    # the trials' recipe options belong to their recipe, not to the standard one
    # what the reference model is trained with; keeping models is not part of that
    training = spec.training.model_dump(mode="json", exclude={"save_models"}) | {
        "recipe": "standard",
        "recipe_options": {},
    }
    return ModelKey(dataset=spec.dataset.name, arch=arch, seed=seed, training=json.dumps(training, sort_keys=True))


def _reference(spec: SweepSpec, ref, arch: str, seed: int, need) -> str:
    """Digest of the reference model for a trial of (arch, seed), registering it."""
    a, s = ref.arch or arch, seed if ref.seed is None else ref.seed
    return need(model_key(spec, a, s), f"reference model {a} seed {s}")


def pool_key(spec: SweepSpec, factor: str, level: float, seed: int, reference: str | None = None) -> DatasetKey:
    opts = spec.design.factors[factor].options
    return PoolKey(
        dataset=spec.dataset.name,
        perturbation=factor,
        level=float(level),
        per_class=opts.per_class,
        options=json.dumps(perturbation_options(factor, opts), sort_keys=True),
        # one seed per (trial seed, factor): all levels perturb the same images with the
        # same noise draw, so levels differ only by the level (common random numbers)
        seed=derive_seed(seed, factor),
        reference=reference,
    )


def suite_key(spec: SweepSpec, key: str, reference: str | None = None) -> DatasetKey:
    ss, sdef = spec.suites[key], suite_def(spec.suite_type(key))
    return SuiteKey(
        dataset=spec.dataset.name,
        type=sdef.name,
        levels=tuple(float(v) for v in (ss.levels or sdef.default_levels)),
        n=ss.n,
        seed=ss.seed,
        # defaults filled in, as for pools: a suite written with or without its default
        # options is one dataset
        options=json.dumps(ss.options.model_dump(), sort_keys=True),
        reference=reference,
    )


def trial_key(spec: SweepSpec, arch: str, seed: int, row: dict, recipe: str, recipe_options: dict,
              pools: dict[str, str]) -> str:  # fmt: skip
    """A digest of everything that determines a trial's trained model: the dataset, the
    architecture, recipe and its options, the seed, the factors it applies (level and
    options; a factor at its "not applied" level is left out, so adding a factor to a spec
    keeps the trials at its baseline), its pools (whose digests hold the FGSM reference
    model and the code that builds them) and the training settings. Suites are not part
    of it: they evaluate the model, they do not make it. Two trials with one key are one
    model (issue 17): an extended sweep keeps them."""
    applied = {f: lv for f, lv in sorted(row.items()) if not factor_def(f).is_identity(lv)}
    factors = {f: {"options": spec.design.factors[f].options.model_dump(mode="json"),
                   "reference": spec.design.factors[f].reference.model_dump(mode="json")}
               for f in applied if f in spec.design.factors}  # fmt: skip
    # how a run executes, not what it learns, is left out (as search/same.py's RUNTIME)
    training = spec.training.model_dump(mode="json", exclude={"save_models", "recipe", "recipe_options", "eval_batch_size",
                                                              "device"})  # fmt: skip
    blob = json.dumps({"version": __version__, "code": code_digest(), "dataset": spec.dataset.name, "arch": arch,
                       "seed": int(seed), "recipe": recipe, "recipe_options": recipe_options, "levels": applied,
                       "factors": factors, "pools": sorted(pools.values()), "training": training},
                      sort_keys=True, default=str)  # fmt: skip
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


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

    def suites_for(arch: str, seed: int) -> dict[str, str]:
        out = {}
        for k, ss in spec.suites.items():
            if suite_def(spec.suite_type(k)).whitebox is not None:
                continue  # attacks the trial's own model, in the trial: nothing to build
            ref = (
                _reference(spec, ss.reference, arch, seed, need) if suite_def(spec.suite_type(k)).needs_model else None
            )
            out[k] = need(suite_key(spec, k, ref), f"suites.{k}")
        return out

    def pools_for(row: dict, arch: str, seed: int) -> dict[str, str]:
        pools = {}
        for f, lv in row.items():
            fdef = factor_def(f)
            if fdef.stage != "augment" or fdef.is_identity(lv):
                continue
            ref = None
            if PERTURBATIONS.get(f).needs_model:
                ref = _reference(spec, spec.design.factors[f].reference, arch, seed, need)
            pools[f] = need(pool_key(spec, f, lv, seed, ref), level_path(spec, f, lv))
        return pools

    trials, seen = [], {}
    for row in design_rows(spec):
        for arch, (recipe, opts), seed in itertools.product(spec.architectures, spec.recipe_list(), spec.seeds):
            tid = f"t{len(trials):04d}"
            pools = pools_for(row, arch, seed)
            key = trial_key(spec, arch, seed, row, recipe, opts, pools)
            seen[key] = seen.get(key, 0) + 1
            key = key if seen[key] == 1 else f"{key}-{seen[key]}"  # a design that repeats a row: its replicates
            trials.append(TrialPlan(tid, arch, seed, dict(row), recipe, opts, pools, suites_for(arch, seed), key))
    return Plan(trials, datasets, where)


def estimate_bytes(spec: SweepSpec, key: DatasetKey) -> int:
    """Bytes a dataset will take in the object store, from the registry's sizes alone."""
    return key.nbytes()


def machine_memory() -> int:
    """Bytes of physical memory on this machine."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def memory_note(spec: SweepSpec, plan: Plan) -> str | None:
    """Why the planned datasets cannot fit on this machine, or None when they can."""
    need, have = sum(plan.nbytes(spec).values()), machine_memory()
    if need <= have:
        return None
    return (f"the datasets need {need / 2**30:,.1f} GiB in the object store, more than this machine's "
            f"{have / 2**30:,.1f} GiB of memory")  # fmt: skip
