"""Sweep specs: YAML -> a typed, validated :class:`SweepSpec`, checked once at the edge.

Structure is checked by pydantic; names and levels are then checked against the
registries (datasets, architectures, factors, suites, designs, recipes). Every problem is
reported as ``FILE: key.path[i]: message`` through :class:`SpecError`, so inner code can
trust the spec it is given.
"""

from __future__ import annotations

import difflib
import math
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import SpecError


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def expand_levels(value: Any) -> Any:
    """``levels`` may be a list or ``{start, stop, step}`` (stop inclusive)."""
    if isinstance(value, dict) and set(value) == {"start", "stop", "step"}:
        start, stop, step = (float(value[k]) for k in ("start", "stop", "step"))
        if step <= 0 or stop < start:
            raise ValueError("a level range needs step > 0 and stop >= start")
        count = int(math.floor((stop - start) / step + 1e-9)) + 1
        return [round(start + i * step, 10) for i in range(count)]
    return value


class DatasetSpec(Strict):
    name: str = "mnist-5k"
    root: str | None = Field(None, description="data root; else --data-root, $ROBUST_RAY_DATA, ~/.cache")
    download: bool = True


class Resources(Strict):
    cpu: float = Field(1.0, gt=0)
    gpu: float = Field(0.0, ge=0)

    @field_validator("gpu")
    @classmethod
    def _whole_above_one(cls, v: float) -> float:
        if v > 1 and v != int(v):
            raise ValueError(f"a GPU request above 1 must be a whole number of GPUs, not {v}")
        return v


class TrainingSpec(Strict):
    recipe: str = "standard"
    recipe_options: dict[str, Any] = Field(
        default_factory=dict, description="options of the recipe (e.g. eps, steps for pgd_at)"
    )
    optimizer: Literal["adam", "sgd"] = "adam"
    lr: float = Field(1e-3, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    batch_size: int = Field(128, ge=1)
    max_epochs: int = Field(30, ge=1)
    patience: int = Field(3, ge=1)
    min_delta: float = Field(0.0, ge=0)
    val_fraction: float = Field(0.1, gt=0, lt=0.5)
    eval_batch_size: int = Field(4096, ge=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    amp: bool = True


class ReferenceSpec(Strict):
    """The reference model a model-specific perturbation (FGSM) attacks: the clean-trained
    model of this architecture and seed. Unset fields mean "the trial's own"."""

    arch: str | None = None
    seed: int | None = None


class FactorSpec(BaseModel):
    """``levels``, ``baseline`` and ``reference``; any other key is an option of that factor
    (checked against the factor's own options model, e.g. ``per_class`` for augment factors)."""

    model_config = ConfigDict(extra="allow")
    levels: list[float] = Field(default_factory=list, description="required except in a list design")
    baseline: float | None = None
    reference: ReferenceSpec = ReferenceSpec()

    _expand = field_validator("levels", mode="before")(expand_levels)


class DesignSpec(Strict):
    type: str = "one_factor"
    factors: dict[str, FactorSpec] = Field(min_length=1)
    rows: list[dict[str, float]] = Field(default_factory=list, description="the rows of a list design")


class SuiteSpec(BaseModel):
    """Any key besides these is an option of the suite's perturbation (e.g. few_pixel's
    ``value_range`` for a generic ``type: few_pixel`` suite)."""

    model_config = ConfigDict(extra="allow")
    type: str | None = Field(None, description="registered suite or perturbation; default: the key")
    levels: list[float] | None = None
    n: int | None = Field(None, ge=1, description="use this many test images (stratified)")
    seed: int = 0
    reference: ReferenceSpec = ReferenceSpec()

    _expand = field_validator("levels", mode="before")(expand_levels)


class ExecutionSpec(Strict):
    max_failures: int = Field(2, ge=0, description="retries of a trial whose worker dies or that raises")
    max_concurrent: int | None = Field(None, ge=1, description="cap on trials running at once")
    reuse_actors: bool | None = Field(
        None, description="reuse trial processes between trials; default: on a one-node Ray, not on a cluster"
    )


class SearchRange(BaseModel):
    """One searched dimension: a range (``low``, ``high``, optional ``step`` or ``log``) or
    a list of ``choices``. For a factor, ``reference`` and any other key are the factor's
    options, as in ``design.factors`` (``per_class``, ...). Checked in search/checks.py."""

    model_config = ConfigDict(extra="allow")
    low: float | None = None
    high: float | None = None
    step: float | None = Field(None, gt=0, description="discrete levels low, low + step, ..., high")
    log: bool = False
    choices: list[float] | None = None
    reference: ReferenceSpec = ReferenceSpec()


class Objective(Strict):
    metric: str = Field(description="a metric every trial reports: acc_<suite>, val_acc, train_acc")
    mode: Literal["max", "min"] = "max"


class Constraint(Strict):
    """``min <= metric <= max``, as an Optuna constraint (feasible when every value <= 0)."""

    metric: str
    min: float | None = None
    max: float | None = None


class EarlyStopping(Strict):
    """ASHA on a per-epoch metric: stop trials that trail the others at a rung."""

    metric: Literal["val_acc", "train_loss"] = "val_acc"
    grace_epochs: int = Field(2, ge=1, description="epochs every trial gets before it can be stopped")
    reduction_factor: float = Field(3.0, gt=1)


class SearchSpec(Strict):
    """``robust-ray search``: Optuna proposes factor levels (and training settings), Ray Tune
    runs the same trial as ``run`` on them (see robust_ray/search/)."""

    space: dict[str, SearchRange] = Field(min_length=1, description="factor or training.<setting> -> range")
    objectives: list[Objective] = Field(min_length=1)
    constraints: list[Constraint] = Field(default_factory=list)
    trials: int = Field(ge=1, description="trial budget (warm-start trials not counted)")
    concurrency: int | None = Field(None, ge=1, description="trials at once (default: execution.max_concurrent, else as resources allow)")
    sampler: Literal["gp", "tpe", "nsga2", "random"] = Field(
        "gp", description="gp: Gaussian-process BO (few dimensions, small budgets); tpe or nsga2: many dimensions or trials"
    )
    startup_trials: int | None = Field(None, ge=0, description="random trials before the model (default: trials // 4, 2 to 10)")
    seed: int = 0
    early_stopping: EarlyStopping | None = None
    warm_start: list[str] = Field(default_factory=list, description="results folders whose trials seed the study")
    storage: str | None = Field(None, description="Optuna journal file or database URL (default: OUTPUT/study.journal)")


class SweepSpec(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    description: str = ""
    dataset: DatasetSpec = DatasetSpec()
    architectures: list[str] = Field(min_length=1)
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    resources: Resources = Resources()
    training: TrainingSpec = TrainingSpec()
    design: DesignSpec | None = None
    search: SearchSpec | None = None
    suites: dict[str, SuiteSpec] = Field(default_factory=lambda: {"clean": SuiteSpec()}, min_length=1)
    execution: ExecutionSpec = ExecutionSpec()
    recipes: dict[str, dict[str, Any]] | None = Field(
        None, description="recipes to compare, name -> options; crossed with the design like architectures"
    )

    def recipe_list(self) -> list[tuple[str, dict[str, Any]]]:
        """(recipe, options) of every trial variant: ``recipes`` or the one of ``training``."""
        if self.recipes is not None:
            return [(name, dict(opts or {})) for name, opts in self.recipes.items()]
        return [(self.training.recipe, dict(self.training.recipe_options))]

    @model_validator(mode="after")
    def _design_or_search(self) -> "SweepSpec":
        if self.design is None and self.search is None:
            raise ValueError("a spec needs a design (robust-ray run) or a search section (robust-ray search)")
        return self

    def suite_type(self, key: str) -> str:
        return self.suites[key].type or key


# --- loading and error reporting -----------------------------------------------------


def _known_keys() -> set[str]:
    keys: set[str] = set()
    for m in (SweepSpec, DatasetSpec, Resources, TrainingSpec, FactorSpec, DesignSpec, SuiteSpec, ExecutionSpec,
              ReferenceSpec, SearchSpec, SearchRange, Objective, Constraint, EarlyStopping):
        keys.update(m.model_fields)
    return keys


def key_path(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _message(err: dict) -> str:
    if err["type"] == "extra_forbidden":
        name = str(err["loc"][-1])
        close = difflib.get_close_matches(name, _known_keys(), n=1)
        return f"unknown key {name!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
    if err["type"] == "missing":
        return "required key is missing"
    return err["msg"].removeprefix("Value error, ")


def parse_spec(data: Any, file: str | None = None) -> SweepSpec:
    """Validate a spec already read from YAML; raise :class:`SpecError` naming the key."""
    if not isinstance(data, dict):
        raise SpecError(file, "", "a sweep spec must be a YAML mapping (key: value)")
    try:
        spec = SweepSpec.model_validate(data)
    except ValidationError as e:
        problems = [(key_path(err["loc"]), _message(err)) for err in e.errors()]
        first_path, first_msg = problems[0]
        more = "".join(f"\n  {p}: {m}" for p, m in problems[1:])
        raise SpecError(file, first_path, first_msg + more) from None
    from .checks import check_spec  # registries import torch; keep YAML parsing light

    check_spec(spec, file)
    return spec


def load_spec(path: str | Path, smoke: bool = False) -> SweepSpec:
    """Read and validate a spec file; ``smoke=True`` validates its smoke-test variant
    (the ``smoke:`` section merged over it, see :func:`smoke_variant`)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise SpecError(str(path), "", f"cannot read the spec: {e.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise SpecError(str(path), "", f"not valid YAML{where}: {getattr(e, 'problem', e)}") from None
    if not isinstance(data, dict):
        return parse_spec(data, str(path))
    overrides = data.pop(SMOKE_KEY, None)
    if overrides is not None and not isinstance(overrides, dict):
        raise SpecError(str(path), SMOKE_KEY, "the smoke-test section must be a mapping of keys to override")
    if not smoke:
        return parse_spec(data, str(path))
    if overrides is None:
        raise SpecError(str(path), "", f"--smoke-test: this spec has no '{SMOKE_KEY}:' section")
    return parse_smoke(data, overrides, str(path))


# --- smoke-test variants ------------------------------------------------------------------

SMOKE_KEY = "smoke"


def smoke_variant(data: dict, overrides: dict) -> dict:
    """The spec ``data`` with its ``smoke:`` section merged over it: mappings merge key by
    key, ``null`` removes a key (it takes its default), anything else (a list, a number)
    replaces. The name gets ``-smoke`` unless the section sets one, so a smoke run never
    writes into the full sweep's results folder."""

    def merge(base: Any, over: Any) -> Any:
        if not (isinstance(base, dict) and isinstance(over, dict)):
            return over
        out = dict(base)
        for k, v in over.items():
            if v is None:
                out.pop(k, None)
            else:
                out[k] = merge(out.get(k), v)
        return out

    merged = merge(data, overrides)
    if "name" not in overrides and isinstance(data.get("name"), str):
        merged["name"] = f"{data['name']}-smoke"
    return merged


def _override_paths(over: Any, prefix: tuple = ()) -> list[tuple]:
    """Key paths (as tuples) that the smoke section sets: its leaves and removed keys."""
    if not isinstance(over, dict) or not over:
        return [prefix]
    return [p for k, v in over.items() for p in _override_paths(v, (*prefix, str(k)))]


def parse_smoke(data: dict, overrides: dict, file: str | None = None) -> SweepSpec:
    """Validate the smoke-test variant; an error in a key the smoke section set (or in a
    mapping it changed) is reported under ``smoke.`` (``smoke.design.factors.gaussian_l2.levels[0]``),
    one in a key it left alone under its own path, with a note that the smoke-test variant
    was checked."""
    try:
        return parse_spec(smoke_variant(data, overrides), file)
    except SpecError as e:
        parts = tuple(re.findall(r"[^.\[\]]+", e.path))
        n = len(parts)
        if parts and any(parts[: len(p)] == p or p[:n] == parts for p in _override_paths(overrides)):
            raise SpecError(e.file, f"{SMOKE_KEY}.{e.path}", e.message) from None
        raise SpecError(e.file, e.path, f"{e.message} (in the --smoke-test variant)") from None
