"""Analysis recipes (YAML): which statistics, tables and plots to make from which sweeps.

The format is documented in ``analysis/README.md``. A recipe is validated twice, both
before anything is written: its structure here (pydantic; errors name the key path), then
against the results (:func:`check_recipe`; a factor, suite or architecture the data does
not have is named together with the file that lacks it). Without a recipe,
:func:`default_recipe` derives one from each sweep's design.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from ..config import key_path
from ..errors import UserError
from .load import Results


class RecipeError(UserError):
    """A recipe that is malformed or names something the results do not have."""

    def __init__(self, file: str | None, path: str, message: str):
        where = f"{file}: " if file else ""
        at = f"{path}: " if path else ""
        super().__init__(f"{where}{at}{message}")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Step(Strict):
    id: str | None = Field(None, description="name used for this step's tables and plots")


class Correlation(Step):
    """Spearman (and/or Pearson) r, p, mean and variance per factor x arch x suite (000
    Tables 2, 4, 5) and the accuracy-vs-level line plots (000 Figs. 2-5)."""

    type: Literal["correlation"]
    factors: list[str] | None = None
    methods: list[Literal["spearman", "pearson"]] = ["spearman"]
    plot: bool = True


def _levels(value, arch: str | None = None) -> list[float]:
    """A list of numbers (bools are YAML's yes/no, not levels; strings are typos)."""
    at = f"{arch}: " if arch else ""
    if not isinstance(value, list):
        raise ValueError(f"{at}{value!r} is not a list of levels (e.g. [8.0])")  # noqa: TRY004 (pydantic reports ValueError only)
    bad = [v for v in value if isinstance(v, bool) or not isinstance(v, (int, float))]
    if bad:
        raise ValueError(f"{at}{bad[0]!r} is not a level (a number)")
    return [float(v) for v in value]


class Segments(Step):
    """000 Table 3: split each factor's levels at the peak of a suite's accuracy (per
    architecture) or at fixed breakpoints, shared or per architecture (000 splits LeNet-5
    at 8.0 and AlexNet-8 at 7.0); r, p, mean, variance per segment."""

    type: Literal["segments"]
    factor: str
    peak_of: str | None = Field(None, description="suite whose mean accuracy peaks at the split")
    breakpoints: list[float] | dict[str, list[float]] | None = Field(
        None, description="segment k holds b[k-1] < level <= b[k]; a list for every architecture, or {arch: list}")
    methods: list[Literal["spearman", "pearson"]] = ["spearman"]

    @field_validator("breakpoints", mode="before")
    @classmethod
    def _list_or_mapping(cls, v):
        # checked here, not by pydantic's union, whose errors name the union's branches
        # (breakpoints.list[float]) instead of what is wrong
        if v is None or isinstance(v, list):
            return v if v is None else _levels(v)
        if not isinstance(v, dict) or not v:
            raise ValueError("give a list of levels for every architecture ([8.0]) or a mapping architecture: levels "
                             "({lenet5: [8.0], alexnet8: [7.0]})")
        for arch in v:
            if not isinstance(arch, str):
                raise ValueError(f"architecture {arch!r} is not a name (mapping keys are architectures, e.g. lenet5)")  # noqa: TRY004 (as above)
        return {arch: _levels(levels, arch) for arch, levels in v.items()}

    @model_validator(mode="after")
    def _one_split(self):
        if (self.peak_of is None) == (self.breakpoints is None):
            raise ValueError("give exactly one of peak_of (a suite) or breakpoints (levels)")
        return self

    def cuts(self, arch: str) -> list[float] | None:
        """The breakpoints of ``arch`` (None: the mapping has none for it)."""
        if isinstance(self.breakpoints, dict):
            return self.breakpoints.get(arch)
        return self.breakpoints


class MultipleStep(Step):
    """000 Tables 6-7: multiple correlation R of accuracy with several factors (OLS)."""

    type: Literal["multiple"]
    factors: list[str] | None = None


class OrthogonalStep(Step):
    """Range analysis, ANOVA (empty columns as error) and main-effect plots."""

    type: Literal["orthogonal"]
    factors: list[str] | None = None


class Heatmap(Step):
    """000 Fig. 6: mean accuracy over a grid of two factors, per architecture."""

    type: Literal["heatmap"]
    factors: list[str] | None = Field(None, min_length=2, max_length=2)


class Severity(Step):
    """Accuracy against each suite's own level, one line per training level."""

    type: Literal["severity"]
    factors: list[str] | None = None


class RefPoint(Strict):
    mean: float = Field(ge=0, le=1, description="reference mean accuracy (fraction)")
    cv: float = Field(ge=0, description="reference coefficient of variation (%)")


class MCVStep(Step):
    """003: mean accuracy, CV (%), the four-quadrant mCV plot and Algorithm 1's groups."""

    type: Literal["mcv"]
    reference: Literal["clean", "clean-per-arch", "all"] | RefPoint = "clean"
    suite: str | None = Field(None, description="the suite whose conditions are the test sets (default: the two-factor-69 suite, "
                                                "else every suite x condition)")


class CorruptionStep(Step):
    """004: per-corruption and aggregate accuracy; mCE against a baseline model."""

    type: Literal["corruption"]
    baseline_arch: str | None = Field(None, description="mCE against this arch's clean-trained model")
    suite: str | None = Field(None, description="a corruptions suite (default: the sweep's; without one, every perturbed suite is a corruption)")


class PixelStep(Step):
    """002: Pixel-index Pi = w / (p r a) and accuracy against the number of pixels. p, r, a
    come from the pixel suite's conditions (suites.json); the keys below stand in for them
    on suites that lack them (a generic few_pixel suite, results without suites.json)."""

    type: Literal["pixel_index"]
    suite: str | None = Field(None, description="default: the sweep's pixel suite")
    image_pixels: int | None = Field(None, ge=1, description="pixels per image, for p = level / image_pixels where suites.json has no p")
    level_unit: Literal["pixels", "fraction"] = "pixels"
    value_range: float | None = Field(None, gt=0, le=1, description="r where suites.json has none (default 1)")
    area: float | None = Field(None, gt=0, le=1, description="a where suites.json has none (default 1)")
    w: Literal["flipped", "relative", "drop", "error"] | None = Field(
        None, description="default: flipped where the metrics count the images a change turned wrong, else relative "
        "when there is a clean reference, else error")
    clean_suite: str | None = None


class Corruption(Strict):
    factor: str = Field(description="the training factor that adds this corruption")
    level: float = Field(description="the factor's level M_c was trained at")
    suite: str | None = Field(None, description="a suite of its own for this corruption (older layout); "
                                                "default: its conditions in the corruptions suite")
    corruption: str | None = Field(None, description="its name in the corruptions suite (default: the key)")


class OverlapStep(Step):
    """001: corruption overlapping score of every pair of corruptions. Without
    ``corruptions``: every corruption c of the corruptions suite that a ``corruption:c``
    training factor adds (at that factor's highest level)."""

    type: Literal["overlap"]
    clean_suite: str | None = Field(None, description="default: the sweep's clean suite")
    suite: str | None = Field(None, description="default: the sweep's corruptions suite")
    corruptions: dict[str, Corruption] | None = Field(None, min_length=2)


Analysis = Annotated[
    Union[Correlation, Segments, MultipleStep, OrthogonalStep, Heatmap, Severity, MCVStep, CorruptionStep, PixelStep, OverlapStep],
    Field(discriminator="type"),
]


class Recipe(Strict):
    name: str
    description: str = ""
    sweeps: list[str] | None = Field(None, description="sweep names this recipe reads (default: all)")
    architectures: list[str] | None = None
    suites: list[str] | None = Field(None, description="suites to analyse, in table order (default: all)")
    variance_ddof: Literal[0, 1] = Field(1, description="1: sample variance; 0: population variance")
    alpha: float = Field(0.05, gt=0, lt=1, description="significance level used in the text")
    defaults: bool = Field(False, description="also run the design-driven default analyses")
    analyses: list[Analysis] = Field(default_factory=list)
    reference: str | list[str] | None = Field(None, description="published-values CSV(s), relative to this recipe")
    _file: str | None = PrivateAttr(None)

    @property
    def file(self) -> str | None:
        return self._file

    def reference_paths(self) -> list[Path]:
        """The reference tables, relative to the recipe file (one or a list of CSVs)."""
        if self.reference is None:
            return []
        base = Path(self.file).parent if self.file else Path.cwd()
        names = [self.reference] if isinstance(self.reference, str) else self.reference
        return [base / n for n in names]


STEP_TYPES = {"correlation", "segments", "multiple", "orthogonal", "heatmap", "severity", "mcv", "corruption", "pixel_index", "overlap"}


def _clean_loc(loc: tuple) -> tuple:
    """Drop the union tag pydantic inserts after a list index (analyses.2.segments.factor)."""
    return tuple(p for i, p in enumerate(loc) if not (p in STEP_TYPES and i and isinstance(loc[i - 1], int)))


def parse_recipe(data, file: str | None = None) -> Recipe:
    if not isinstance(data, dict):
        raise RecipeError(file, "", "a recipe must be a YAML mapping (key: value)")
    try:
        recipe = Recipe.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = f"unknown key {str(err['loc'][-1])!r}"
        elif err["type"] == "missing":
            msg = "required key is missing"
        raise RecipeError(file, key_path(_clean_loc(err["loc"])), msg) from None
    recipe._file = file
    return recipe


def load_recipe(path: str | Path) -> Recipe:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as e:
        raise RecipeError(str(path), "", f"cannot read the recipe: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise RecipeError(str(path), "", f"not valid YAML: {e}") from None
    return parse_recipe(data, str(path))


def default_recipe(results: Results) -> Recipe:
    """What a sweep's design and suites call for (issue 3's minimum and more).

    one_factor: correlation + mean/variance and line plots per factor, severity curves on
    the level suites (mnist-c, mnist-a); other designs with two or more factors: multiple
    correlation, range analysis/ANOVA, per-factor correlation over all rows, and a heatmap
    when there are exactly two; with per-condition metrics: 004's per-corruption accuracy
    (the corruptions suite, else each level suite as a corruption), 003's mCV plot (on the
    two-factor-69 suite when there is one), 002's Pixel-index (a pixel suite) and 001's
    overlapping score (a corruptions suite and two or more ``corruption:<name>`` factors).
    """
    steps: list[dict] = []
    kinds = {d.one_factor for d in results.designs.values()}
    nfactors = max(len(d.factors) for d in results.designs.values())
    conds = results.conditions
    has = lambda col, value: bool(len(conds)) and bool((conds[col] == value).any())  # noqa: E731
    steps.append({"type": "correlation"})
    if True in kinds and not results.metrics.empty and has("kind", "levels"):
        steps.append({"type": "severity"})
    if False in kinds and nfactors >= 2:
        steps += [{"type": "multiple"}, {"type": "orthogonal"}, {"type": "heatmap"}]
    if not results.metrics.empty:
        if has("type", "corruptions") or has("kind", "levels"):
            steps.append({"type": "corruption"})
        steps.append({"type": "mcv"})
        px = conds[(conds["type"] == "pixel") & conds["perturbation"].notna()]  # the unchanged images have no p
        if has("type", "pixel") and px["p"].notna().all():  # p, r, a known (suites.json)
            steps.append({"type": "pixel_index"})
        if has("type", "corruptions") and any(len(overlap_factors(d, results)) >= 2 for d in results.designs.values()):
            steps.append({"type": "overlap"})
    return Recipe(name="default", description="design-driven default analysis", analyses=steps)


def sweep_suites(results: Results, d, stype: str | None = None, kind: str | None = None, order: list[str] | None = None) -> list[str]:
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


def overlap_factors(d, results: Results, suite: str | None = None) -> dict[str, str]:
    """corruption name -> its ``corruption:<name>`` training factor, for the corruptions of
    the corruptions suite (``suite``, default the sweep's first) that the design trains on."""
    suites = [suite] if suite else sweep_suites(results, d, "corruptions")
    if not suites:
        return {}
    c = results.conditions
    names = c[(c["sweep"] == d.sweep) & (c["suite"] == suites[0])]["corruption"].dropna().unique()
    return {n: f"corruption:{n}" for n in names if f"corruption:{n}" in d.factors}


def _path(i: int, key: str, j: int | None = None) -> str:
    return f"analyses[{i}].{key}" + (f"[{j}]" if j is not None else "")


def check_recipe(recipe: Recipe, results: Results) -> None:
    """Every sweep, architecture, suite and factor the recipe names must be in the data."""
    file = recipe.file
    sweeps = list(results.designs)
    names = {d.sweep.split("@")[0]: d.sweep for d in results.designs.values()}
    for j, s in enumerate(recipe.sweeps or []):
        if s not in results.designs and s not in names:
            raise RecipeError(file, f"sweeps[{j}]", f"no sweep {s!r} in the results (sweeps: {', '.join(sweeps)})")
    targets = [results.designs[names.get(s, s)] for s in recipe.sweeps] if recipe.sweeps else list(results.designs.values())
    trials = results.trials
    where = ", ".join(d.folder for d in targets) or "the results"

    def need_column(col: str, path: str, what: str) -> None:
        for d in targets:
            t = trials[trials["sweep"] == d.sweep]
            if col not in t.columns or t[col].isna().all():
                known = ", ".join(d.factors) or "none"
                raise RecipeError(file, path, f"no {what} column {col!r} in {d.folder}/trials.parquet (factors: {known})")

    def need_suite(suite: str, path: str, per_level: bool = False) -> None:
        for d in targets:
            has = suite in d.suites or f"acc_{suite}" in trials.columns
            if per_level:
                has = bool((results.metrics["suite"] == suite).any())
            if not has:
                src = "metrics.parquet" if per_level else "trials.parquet"
                raise RecipeError(file, path, f"no suite {suite!r} in {d.folder}/{src} (suites: {', '.join(d.suites)})")

    for j, a in enumerate(recipe.architectures or []):
        if not (trials["arch"] == a).any():
            raise RecipeError(file, f"architectures[{j}]", f"no architecture {a!r} in {where} (architectures: {', '.join(sorted(trials['arch'].unique()))})")
    for j, s in enumerate(recipe.suites or []):
        need_suite(s, f"suites[{j}]")
    for i, step in enumerate(recipe.analyses):
        for j, f in enumerate(getattr(step, "factors", None) or []):
            need_column(f, _path(i, "factors", j), "factor")
        if isinstance(step, Segments):
            need_column(step.factor, _path(i, "factor"), "factor")
            if step.peak_of:
                need_suite(step.peak_of, _path(i, "peak_of"))
            if isinstance(step.breakpoints, dict):
                _check_breakpoints(step, i, targets, trials, recipe.architectures, file)
        if isinstance(step, CorruptionStep) and step.baseline_arch and not (trials["arch"] == step.baseline_arch).any():
            raise RecipeError(file, _path(i, "baseline_arch"), f"no architecture {step.baseline_arch!r} in {where}")
        if isinstance(step, (MCVStep, CorruptionStep)) and step.suite:
            need_suite(step.suite, _path(i, "suite"), per_level=True)
        if isinstance(step, PixelStep):
            _check_pixel(step, i, targets, results, need_suite, file)
        if isinstance(step, OverlapStep):
            _check_overlap(step, i, targets, results, need_suite, need_column, file)
        if isinstance(step, (MCVStep, CorruptionStep, Severity, PixelStep)) and results.metrics.empty:
            raise RecipeError(file, _path(i, "type"), f"{step.type} needs per-level metrics, and {where} has none (no metrics.parquet, or no ok trial in it)")
    for j, ref in enumerate(recipe.reference_paths()):
        if not ref.is_file():
            where = "reference" if isinstance(recipe.reference, str) else f"reference[{j}]"
            raise RecipeError(file, where, f"no reference table at {ref}")


def _check_breakpoints(step: Segments, i: int, targets, trials, archs: list[str] | None, file) -> None:
    """Every analysed architecture needs its breakpoints. Names the data lacks are not an
    error: a mapping may carry the paper's architectures while a run trains only some of
    them (the segments section lists the unused ones); a typo shows here all the same, as
    the architecture it was meant for then has none."""
    for d in targets:
        t = trials[trials["sweep"] == d.sweep]
        present = t["arch"].unique() if not archs else [a for a in archs if (t["arch"] == a).any()]
        for arch in sorted(present):
            if arch not in step.breakpoints:
                raise RecipeError(file, _path(i, "breakpoints"), f"no breakpoints for architecture {arch!r} of {d.folder} "
                                  f"(the mapping names {', '.join(step.breakpoints)}); add {arch}: [levels]")


def _clean_suites(results: Results, d) -> list[str]:
    return [s for s in sweep_suites(results, d, kind="clean") if f"acc_{s}" in results.trials]


def _check_pixel(step: PixelStep, i: int, targets, results: Results, need_suite, file) -> None:
    if step.suite:
        need_suite(step.suite, _path(i, "suite"), per_level=True)
    if step.clean_suite:
        need_suite(step.clean_suite, _path(i, "clean_suite"), per_level=True)
    for d in targets:
        suite = step.suite or next(iter(sweep_suites(results, d, "pixel")), None)
        if suite is None:
            raise RecipeError(file, _path(i, "suite"), f"no pixel suite in {d.folder} (suites: {', '.join(d.suites)}); name the few-pixel suite")
        c = results.conditions
        c = c[(c["sweep"] == d.sweep) & (c["suite"] == suite) & c["perturbation"].notna()]  # the unchanged images have no p
        if c["p"].isna().any() and step.image_pixels is None and step.level_unit == "pixels":
            raise RecipeError(file, _path(i, "image_pixels"), f"suite {suite!r} of {d.folder} has no Pixel-index terms p, r, a "
                              "(no suites.json, or a generic few_pixel suite): give image_pixels (e.g. 784 for 28x28)")
        if step.w in ("drop", "relative") and not step.clean_suite and not _clean_suites(results, d):
            raise RecipeError(file, _path(i, "w"), f"w: {step.w} compares with a clean suite, and {d.folder} has none: give clean_suite")


def _check_overlap(step: OverlapStep, i: int, targets, results: Results, need_suite, need_column, file) -> None:
    for key in ("suite", "clean_suite"):
        if getattr(step, key):
            need_suite(getattr(step, key), _path(i, key))
    for name, c in (step.corruptions or {}).items():
        need_column(c.factor, f"analyses[{i}].corruptions.{name}.factor", "factor")
        if c.suite:
            need_suite(c.suite, f"analyses[{i}].corruptions.{name}.suite")
    for d in targets:
        if not step.clean_suite and not _clean_suites(results, d):
            raise RecipeError(file, _path(i, "clean_suite"), f"no clean suite in {d.folder} (suites: {', '.join(d.suites)}); name one")
        needs_suite = step.corruptions is None or any(c.suite is None for c in step.corruptions.values())
        if needs_suite and not step.suite and not sweep_suites(results, d, "corruptions"):
            raise RecipeError(file, _path(i, "suite"), f"no corruptions suite in {d.folder} (suites: {', '.join(d.suites)})")
        if step.corruptions is None and len(overlap_factors(d, results, step.suite)) < 2:
            found = ", ".join(overlap_factors(d, results, step.suite)) or "none"
            raise RecipeError(file, _path(i, "type"), f"the overlapping score needs models trained with two or more corruptions of the "
                              f"corruptions suite (factors corruption:<name>); {d.folder} has {found}")
