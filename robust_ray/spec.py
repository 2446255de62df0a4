"""Sweep specs as typed models: the structure of a spec and the bounds of every value.

A leaf module (pydantic only): the structural checks (min <= max, ranges, finite numbers,
seeds, no repeated levels) are validators on these models; the registry checks (known
names, levels within a perturbation's range) run after, in :mod:`robust_ray.checks`, and
:mod:`robust_ray.loader` reads YAML and runs both. Nothing here imports torch.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator


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


class WithOptions(BaseModel):
    """A section whose other keys are options of a registered thing (a factor, a suite's
    perturbation), whose options model the spec cannot name: the registry checks resolve
    them once (:meth:`resolve_options`) and inner code reads them typed (:attr:`options`)."""

    model_config = ConfigDict(extra="allow")
    _options: BaseModel | None = PrivateAttr(None)

    def resolve_options(self, model: type[BaseModel]) -> BaseModel:
        """Validate the other keys with ``model`` (raises pydantic's ValidationError) and keep them."""
        self._options = model.model_validate(self.model_extra or {})
        return self._options

    @property
    def options(self) -> BaseModel:
        if self._options is None:
            raise RuntimeError("options not resolved: load specs with robust_ray.loader (parse_spec, load_spec)")
        return self._options


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
    save_models: bool | None = Field(
        None,
        description="keep each trial's weights in OUT/models/<trial_id>.safetensors (for `robust-ray "
        "evaluate` and robust_ray.evaluate); default: when every architecture has at most 5M parameters "
        "(LeNet-5: 62k, 0.25 MB a model; AlexNet-8 on CIFAR: 1.3 GB for 340 trials is where it stops)",
    )


class ReferenceSpec(Strict):
    """The reference model a model-specific perturbation (FGSM) attacks: the clean-trained
    model of this architecture and seed. Unset fields mean "the trial's own"."""

    arch: str | None = None
    seed: Seed | None = None


class FactorSpec(WithOptions):
    """``levels``, ``baseline`` and ``reference``; any other key is an option of that factor
    (checked against the factor's own options model, e.g. ``per_class`` for augment factors)."""

    levels: list[Finite] = Field(default_factory=list, description="required except in a list design")
    baseline: Finite | None = None
    reference: ReferenceSpec = ReferenceSpec()

    _expand = field_validator("levels", mode="before")(expand_levels)
    _unique = field_validator("levels")(_levels_once)


class DesignSpec(Strict):
    type: str = "one_factor"
    factors: dict[str, FactorSpec] = Field(min_length=1)
    rows: list[dict[str, Finite]] = Field(
        default_factory=list, max_length=MAX_LEVELS, description="the rows of a list design"
    )


class SuiteSpec(WithOptions):
    """Any key besides these is an option of the suite's perturbation (e.g. few_pixel's
    ``value_range`` for a generic ``type: few_pixel`` suite)."""

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
    fuse: int | Literal["auto"] = Field(
        1,
        description="train up to this many trials as one Tune trial, stacked with torch.func (robust_ray.fused): trials "
        "of one fusable architecture (no batch norm, no dropout) and the standard recipe; 'auto': 8 when trials get a "
        "GPU, else 1 (on CPU a fused step is no faster: benchmarks/fused_speed.py)",
    )

    @field_validator("fuse")
    @classmethod
    def _fuse_at_least_one(cls, v):
        if v != "auto" and not 1 <= v <= 1024:
            raise ValueError(f"fuse must be 'auto' or a number of trials from 1 to 1024, not {v}")
        return v


class SearchRange(WithOptions):
    """One searched dimension: a range (``low``, ``high``, optional ``step`` or ``log``) or
    a list of ``choices``. For a factor, ``reference`` and any other key are the factor's
    options, as in ``design.factors`` (``per_class``, ...). Checked in search/checks.py."""

    low: Finite | None = None
    high: Finite | None = None
    step: Finite | None = Field(None, gt=0, description="discrete levels low, low + step, ..., high")
    log: bool = False
    choices: list[Finite] | None = None  # repeats are refused in search/checks.py, naming the index

    @model_validator(mode="after")
    def _few_enough_steps(self) -> SearchRange:
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
    concurrency: int | None = Field(
        None, ge=1, description="trials at once (default: execution.max_concurrent, else as resources allow)"
    )
    sampler: Literal["gp", "tpe", "nsga2", "random"] = Field(
        "gp",
        description="gp: Gaussian-process BO (few dimensions, small budgets); tpe or nsga2: many dimensions or trials",
    )
    startup_trials: int | None = Field(
        None, ge=0, description="random trials before the model (default: trials // 4, 2 to 10)"
    )
    seed: Seed = 0
    early_stopping: EarlyStopping | None = None
    warm_start: list[str] = Field(default_factory=list, description="results folders whose trials seed the study")
    storage: str | None = Field(None, description="Optuna journal file or database URL (default: OUTPUT/study.journal)")


class MLflowTracking(Strict):
    """MLflow through Ray Tune's MLflowLoggerCallback: one run per trial."""

    tracking_uri: str | None = Field(
        None, description="e.g. sqlite:///mlflow.db or http://host:5000; default: MLflow's ($MLFLOW_TRACKING_URI)"
    )
    experiment: str | None = Field(None, description="MLflow experiment name; default: the spec's name")


class WandbTracking(Strict):
    """Weights & Biases through Ray Tune's WandbLoggerCallback: one run per trial."""

    project: str | None = Field(None, description="W&B project; default: the spec's name")
    mode: Literal["offline", "online"] = Field(
        "offline", description="offline: files under ./wandb, `wandb sync` uploads them"
    )


class TrackingSpec(Strict):
    """Experiment trackers fed through Ray Tune's own logger callbacks, each an optional
    extra (``pip install "robust-ray[mlflow]"``, ``[tensorboard]``, ``[wandb]``)."""

    mlflow: MLflowTracking | None = None
    tensorboard: bool = Field(False, description="TensorBoard event files in each trial's folder under OUT/tune/")
    wandb: WandbTracking | None = None


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
    tracking: TrackingSpec = TrackingSpec()
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

    @field_validator("suites")
    @classmethod
    def _sql_names_once(cls, v: dict) -> dict:
        """trials.parquet gives ``acc_mnist-c`` an SQL alias ``acc_mnist_c``: two keys with
        one alias would make one suite's column hide the other's."""
        seen: dict[str, str] = {}
        for key in v:
            sql = re.sub(r"[^A-Za-z0-9_]", "_", key)
            if sql in seen:
                raise ValueError(f"suites {seen[sql]!r} and {key!r} share the SQL column name acc_{sql}: rename one")
            seen[sql] = key
        return v

    def recipe_list(self) -> list[tuple[str, dict[str, Any]]]:
        """(recipe, options) of every trial variant: ``recipes`` or the one of ``training``."""
        if self.recipes is not None:
            return [(name, dict(opts or {})) for name, opts in self.recipes.items()]
        return [(self.training.recipe, dict(self.training.recipe_options))]

    @model_validator(mode="after")
    def _design_or_search(self) -> SweepSpec:
        if self.design is None and self.search is None:
            raise ValueError("a spec needs a design (robust-ray run) or a search section (robust-ray search)")
        return self

    def suite_type(self, key: str) -> str:
        return self.suites[key].type or key


def key_path(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
