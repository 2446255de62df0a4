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
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import SpecError


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# Bounds every number of a spec obeys, so a typo fails here and not in a trial: finite
# floats, seeds that numpy and torch both take (0 <= seed < 2**32, and not ``true``).
Finite = Annotated[float, Field(allow_inf_nan=False)]
Seed = Annotated[int, Field(strict=True, ge=0, lt=2**32)]
MAX_LEVELS = 10_000  # of one factor or suite: beyond this a range is a typo, not a sweep


def expand_levels(value: Any) -> Any:
    """``levels`` may be a list or ``{start, stop, step}`` (stop inclusive)."""
    if isinstance(value, dict) and set(value) == {"start", "stop", "step"}:
        try:
            start, stop, step = (float(value[k]) for k in ("start", "stop", "step"))
        except (TypeError, ValueError):
            raise ValueError("a level range needs numbers for start, stop and step") from None
        if not all(map(math.isfinite, (start, stop, step))):
            raise ValueError("a level range needs finite start, stop and step")
        if step <= 0 or stop < start:
            raise ValueError("a level range needs step > 0 and stop >= start")
        count = int(math.floor((stop - start) / step + 1e-9)) + 1
        if count > MAX_LEVELS:
            raise ValueError(f"this range has {count:,} levels, more than {MAX_LEVELS:,}: check start, stop and step")
        return [round(start + i * step, 10) for i in range(count)]
    return value


def _levels_once(values: list | None) -> list | None:
    return no_duplicates(values, "level")


def no_duplicates(values: list | None, what: str = "level") -> list | None:
    """Each level, seed or architecture once: a repeat would train the same model twice."""
    seen: dict = {}
    for i, v in enumerate(values or ()):
        if v in seen and type(v) is type(values[seen[v]]):
            raise ValueError(f"{what} {v!r} is given twice ([{seen[v]}] and [{i}]): each would train the same models")
        seen.setdefault(v, i)
    if values is not None and len(values) > MAX_LEVELS:
        raise ValueError(f"{len(values):,} {what}s, more than {MAX_LEVELS:,}")
    return values


class DatasetSpec(Strict):
    name: str = "mnist-5k"
    root: str | None = Field(None, description="data root; else --data-root, $ROBUST_RAY_DATA, ~/.cache")
    download: bool = True


class Resources(Strict):
    cpu: Finite = Field(1.0, gt=0, le=1024)
    gpu: Finite = Field(0.0, ge=0, le=64)

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
    lr: Finite = Field(1e-3, gt=0)  # finite; a huge lr is how one tests divergence handling
    momentum: Finite = Field(0.9, ge=0, lt=1)
    weight_decay: Finite = Field(0.0, ge=0, le=10)
    batch_size: int = Field(128, ge=1, le=2**20)
    max_epochs: int = Field(30, ge=1, le=100_000)
    patience: int = Field(3, ge=1, le=100_000)
    min_delta: Finite = Field(0.0, ge=0, le=1)
    val_fraction: Finite = Field(0.1, gt=0, lt=0.5)
    eval_batch_size: int = Field(4096, ge=1, le=2**20)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    amp: bool = True


class ReferenceSpec(Strict):
    """The reference model a model-specific perturbation (FGSM) attacks: the clean-trained
    model of this architecture and seed. Unset fields mean "the trial's own"."""

    arch: str | None = None
    seed: Seed | None = None


class FactorSpec(BaseModel):
    """``levels``, ``baseline`` and ``reference``; any other key is an option of that factor
    (checked against the factor's own options model, e.g. ``per_class`` for augment factors)."""

    model_config = ConfigDict(extra="allow")
    levels: list[Finite] = Field(default_factory=list, description="required except in a list design")
    baseline: Finite | None = None
    reference: ReferenceSpec = ReferenceSpec()

    _expand = field_validator("levels", mode="before")(expand_levels)
    _unique = field_validator("levels")(_levels_once)


class DesignSpec(Strict):
    type: str = "one_factor"
    factors: dict[str, FactorSpec] = Field(min_length=1)
    rows: list[dict[str, Finite]] = Field(default_factory=list, max_length=MAX_LEVELS, description="the rows of a list design")


class SuiteSpec(BaseModel):
    """Any key besides these is an option of the suite's perturbation (e.g. few_pixel's
    ``value_range`` for a generic ``type: few_pixel`` suite)."""

    model_config = ConfigDict(extra="allow")
    type: str | None = Field(None, description="registered suite or perturbation; default: the key")
    levels: list[Finite] | None = None
    n: int | None = Field(None, ge=1, description="use this many test images (stratified)")
    seed: Seed = 0
    reference: ReferenceSpec = ReferenceSpec()

    _expand = field_validator("levels", mode="before")(expand_levels)
    _unique = field_validator("levels")(_levels_once)


class ExecutionSpec(Strict):
    max_failures: int = Field(2, ge=0, le=1000, description="retries of a trial whose worker dies or that raises")
    max_concurrent: int | None = Field(None, ge=1, description="cap on trials running at once")
    reuse_actors: bool | None = Field(
        None, description="reuse trial processes between trials; default: on a one-node Ray, not on a cluster"
    )


class SearchRange(BaseModel):
    """One searched dimension: a range (``low``, ``high``, optional ``step`` or ``log``) or
    a list of ``choices``. For a factor, ``reference`` and any other key are the factor's
    options, as in ``design.factors`` (``per_class``, ...). Checked in search/checks.py."""

    model_config = ConfigDict(extra="allow")
    low: Finite | None = None
    high: Finite | None = None
    step: Finite | None = Field(None, gt=0, description="discrete levels low, low + step, ..., high")
    log: bool = False
    choices: list[Finite] | None = None  # repeats are refused in search/checks.py, naming the index

    @model_validator(mode="after")
    def _few_enough_steps(self) -> "SearchRange":
        if self.step is not None and self.low is not None and self.high is not None:
            if (self.high - self.low) / self.step > 1e6:
                raise ValueError(f"step {self.step:g} makes more than a million levels between low and high")
        return self
    reference: ReferenceSpec = ReferenceSpec()


class Objective(Strict):
    metric: str = Field(description="a metric every trial reports: acc_<suite>, val_acc, train_acc")
    mode: Literal["max", "min"] = "max"


class Constraint(Strict):
    """``min <= metric <= max``, as an Optuna constraint (feasible when every value <= 0)."""

    metric: str
    min: Finite | None = None
    max: Finite | None = None


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
    trials: int = Field(ge=1, le=1_000_000, description="trial budget (warm-start trials not counted)")
    concurrency: int | None = Field(None, ge=1, description="trials at once (default: execution.max_concurrent, else as resources allow)")
    sampler: Literal["gp", "tpe", "nsga2", "random"] = Field(
        "gp", description="gp: Gaussian-process BO (few dimensions, small budgets); tpe or nsga2: many dimensions or trials"
    )
    startup_trials: int | None = Field(None, ge=0, description="random trials before the model (default: trials // 4, 2 to 10)")
    seed: Seed = 0
    early_stopping: EarlyStopping | None = None
    warm_start: list[str] = Field(default_factory=list, description="results folders whose trials seed the study")
    storage: str | None = Field(None, description="Optuna journal file or database URL (default: OUTPUT/study.journal)")


class SweepSpec(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    description: str = ""
    dataset: DatasetSpec = DatasetSpec()
    architectures: list[str] = Field(min_length=1)
    seeds: list[Seed] = Field(default_factory=lambda: [0], min_length=1)
    resources: Resources = Resources()
    training: TrainingSpec = TrainingSpec()
    design: DesignSpec | None = None
    search: SearchSpec | None = None
    suites: dict[str, SuiteSpec] = Field(default_factory=lambda: {"clean": SuiteSpec()}, min_length=1)
    execution: ExecutionSpec = ExecutionSpec()
    recipes: dict[str, dict[str, Any]] | None = Field(
        None, description="recipes to compare, name -> options; crossed with the design like architectures"
    )

    @field_validator("architectures")
    @classmethod
    def _architectures_once(cls, v: list[str]) -> list[str]:
        return no_duplicates(v, "architecture")

    @field_validator("seeds")
    @classmethod
    def _seeds_once(cls, v: list[int]) -> list[int]:
        return no_duplicates(v, "seed")

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


def _fields_at(loc: tuple) -> set[str]:
    """Keys valid where ``loc`` points: walk the models, skipping mapping keys and indexes."""
    model: Any = SweepSpec
    parts = list(loc)
    while parts:
        part = parts.pop(0)
        if not (isinstance(model, type) and issubclass(model, BaseModel)) or part not in model.model_fields:
            return _known_keys()
        ann = model.model_fields[part].annotation
        while True:
            origin, args = typing.get_origin(ann), [a for a in typing.get_args(ann) if a is not type(None)]
            if origin in (dict, list):
                if parts:
                    parts.pop(0)  # the mapping key or list index
                ann = args[-1]
            elif args and origin is not None:
                ann = args[0]
            else:
                break
        model = ann
    if isinstance(model, type) and issubclass(model, BaseModel):
        return set(model.model_fields)
    return _known_keys()


def _message(err: dict) -> str:
    if err["type"] == "extra_forbidden":
        name = str(err["loc"][-1])
        close = difflib.get_close_matches(name, _fields_at(tuple(err["loc"][:-1])), n=1)
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
        raw = path.read_bytes()
    except OSError as e:
        raise SpecError(str(path), "", f"cannot read the spec: {e.strerror}") from None
    data = read_yaml(raw, str(path))
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


MAX_DEPTH = 32  # a spec is a few levels deep; thousands are an attack on the parser


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML that refuses a key given twice in one mapping (the second would silently win)."""


def _mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    loader.flatten_mapping(node)
    out: dict = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(None, None, "a mapping key must be a scalar", key_node.start_mark) from None
        if key in out:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} is given twice in one mapping (the second would win silently)",
                key_node.start_mark,
            )  # fmt: skip
        out[key] = loader.construct_object(value_node, deep=deep)
    return out


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def _depth(node: yaml.Node) -> int:
    """Nesting depth of a composed document, each node visited once (aliases share nodes:
    a "billion laughs" document is small as a graph and must stay small here)."""
    depth, level, seen = 0, [node], set()
    while level and depth <= MAX_DEPTH:
        depth += 1
        below = []
        for n in level:
            if id(n) in seen:
                continue
            seen.add(id(n))
            if isinstance(n, yaml.MappingNode):
                below += [part for pair in n.value for part in pair]
            elif isinstance(n, yaml.SequenceNode):
                below += n.value
        level = below
    return depth


def read_yaml(raw: bytes, file: str) -> Any:
    """Spec bytes -> Python data: UTF-8 text, each key once, at most ``MAX_DEPTH`` deep."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        utf16 = raw[:2] in (b"\xff\xfe", b"\xfe\xff")
        what = "UTF-16 text" if utf16 else f"not UTF-8 text (byte {raw[e.start]:#04x} at offset {e.start})"
        raise SpecError(file, "", f"the spec is {what}: save it as UTF-8") from None
    if "\x00" in text:
        raise SpecError(file, "", "the spec holds a NUL character: is it a text file saved as UTF-8?")
    loader = None
    try:
        loader = _UniqueKeyLoader(text)
        node = loader.get_single_node()
        if node is not None and _depth(node) > MAX_DEPTH:
            raise SpecError(file, "", f"the spec is nested more than {MAX_DEPTH} levels deep")
        return loader.construct_document(node) if node is not None else None
    except RecursionError:
        raise SpecError(file, "", f"the spec is nested more than {MAX_DEPTH} levels deep") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise SpecError(file, "", f"not valid YAML{where}: {getattr(e, 'problem', e)}") from None
    finally:
        if loader is not None:
            loader.dispose()


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
