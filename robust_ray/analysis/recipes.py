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
from pydantic import Field, PrivateAttr, ValidationError

from ..config import key_path
from . import steps  # noqa: F401  (registers every step)
from .errors import RecipeError
from .load import Results
from .options import Strict
from .registry import STEPS
from .select import clean_suites, overlap_factors


def _analysis_union():
    """The recipe's ``analyses`` item: one of the registered steps' options models, told
    apart by ``type`` (derived from :data:`.registry.STEPS`, never listed by hand)."""
    models = tuple(s.options for _, s in STEPS.items())
    return Annotated[Union[models], Field(discriminator="type")]  # noqa: UP007  (a Union of a tuple of types)


Analysis = _analysis_union()


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


def _clean_loc(loc: tuple) -> tuple:
    """Drop the union tag pydantic inserts after a list index (analyses.2.segments.factor)."""
    return tuple(p for i, p in enumerate(loc) if not (p in STEPS and i and isinstance(loc[i - 1], int)))


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
    chosen: list[dict] = []
    kinds = {d.one_factor for d in results.designs.values()}
    nfactors = max(len(d.factors) for d in results.designs.values())
    conds = results.conditions
    has = lambda col, value: bool(len(conds)) and bool((conds[col] == value).any())  # noqa: E731
    chosen.append({"type": "correlation"})
    if True in kinds and not results.metrics.empty and has("kind", "levels"):
        chosen.append({"type": "severity"})
    if False in kinds and nfactors >= 2:
        chosen += [{"type": "multiple"}, {"type": "orthogonal"}, {"type": "heatmap"}]
    if not results.metrics.empty:
        if has("type", "corruptions") or has("kind", "levels"):
            chosen.append({"type": "corruption"})
        chosen.append({"type": "mcv"})
        px = conds[(conds["type"] == "pixel") & conds["perturbation"].notna()]  # the unchanged images have no p
        if has("type", "pixel") and px["p"].notna().all():  # p, r, a known (suites.json)
            chosen.append({"type": "pixel_index"})
        if has("type", "corruptions") and any(len(overlap_factors(d, results)) >= 2 for d in results.designs.values()):
            chosen.append({"type": "overlap"})
    if not results.history.empty:  # per-epoch reports (history.parquet): did the models converge?
        chosen.append({"type": "learning_curves"})
    return Recipe(name="default", description="design-driven default analysis", analyses=chosen)


def _path(i: int, key: str, j: int | None = None) -> str:
    return f"analyses[{i}].{key}" + (f"[{j}]" if j is not None else "")


class Checker:
    """What a step's check sees: the recipe, the sweeps it reads, and helpers that raise a
    RecipeError naming the recipe file and key."""

    def __init__(self, recipe: Recipe, results: Results, targets: list):
        self.recipe, self.results, self.targets = recipe, results, targets
        self.file, self.trials = recipe.file, results.trials
        self.where = ", ".join(d.folder for d in targets) or "the results"

    path = staticmethod(lambda i, key, j=None: _path(i, key, j))

    def fail(self, path: str, message: str) -> None:
        raise RecipeError(self.file, path, message)

    def need_column(self, col: str, path: str, what: str) -> None:
        for d in self.targets:
            t = self.trials[self.trials["sweep"] == d.sweep]
            if col not in t.columns or t[col].isna().all():
                known = ", ".join(d.factors) or "none"
                self.fail(path, f"no {what} column {col!r} in {d.folder}/trials.parquet (factors: {known})")

    def need_suite(self, suite: str, path: str, per_level: bool = False) -> None:
        for d in self.targets:
            has = suite in d.suites or f"acc_{suite}" in self.trials.columns
            if per_level:
                has = bool((self.results.metrics["suite"] == suite).any())
            if not has:
                src = "metrics.parquet" if per_level else "trials.parquet"
                self.fail(path, f"no suite {suite!r} in {d.folder}/{src} (suites: {', '.join(d.suites)})")

    def need_clean(self, suite: str, path: str) -> None:
        """``suite`` must be a clean test set (one unperturbed condition): averaging a
        perturbed suite's conditions as "clean accuracy" would be silently wrong."""
        for d in self.targets:
            c = self.results.conditions
            c = c[(c["sweep"] == d.sweep) & (c["suite"] == suite)] if len(c) else c
            if len(c) and (c["kind"] != "clean").any():
                clean = ", ".join(clean_suites(self.results, d)) or "none"
                self.fail(
                    path,
                    f"suite {suite!r} of {d.folder} is not a clean suite (its {len(c)} conditions are perturbed "
                    f"{d.suite_types.get(suite, suite)} images); name a clean one (clean suites: {clean}) or leave the key "
                    "out to use the suite's own unchanged images",
                )


def check_recipe(recipe: Recipe, results: Results) -> None:
    """Every sweep, architecture, suite and factor the recipe names must be in the data;
    then each step's own checks (registered with it)."""
    file = recipe.file
    sweeps = list(results.designs)
    names = {d.sweep.split("@")[0]: d.sweep for d in results.designs.values()}
    for j, s in enumerate(recipe.sweeps or []):
        if s not in results.designs and s not in names:
            raise RecipeError(file, f"sweeps[{j}]", f"no sweep {s!r} in the results (sweeps: {', '.join(sweeps)})")
    targets = (
        [results.designs[names.get(s, s)] for s in recipe.sweeps] if recipe.sweeps else list(results.designs.values())
    )
    chk = Checker(recipe, results, targets)
    trials = results.trials
    for j, a in enumerate(recipe.architectures or []):
        if not (trials["arch"] == a).any():
            chk.fail(
                f"architectures[{j}]",
                f"no architecture {a!r} in {chk.where} (architectures: {', '.join(sorted(trials['arch'].unique()))})",
            )
    for j, s in enumerate(recipe.suites or []):
        chk.need_suite(s, f"suites[{j}]")
    for i, step in enumerate(recipe.analyses):
        for j, f in enumerate(getattr(step, "factors", None) or []):
            chk.need_column(f, _path(i, "factors", j), "factor")
        sdef = STEPS.get(step.type)
        if sdef.check is not None:
            sdef.check(step, i, chk)
        if sdef.needs_metrics and results.metrics.empty:
            chk.fail(
                _path(i, "type"),
                f"{step.type} needs per-level metrics, and {chk.where} has none (no metrics.parquet, or no ok trial in it)",
            )
    for j, ref in enumerate(recipe.reference_paths()):
        if not ref.is_file():
            where = "reference" if isinstance(recipe.reference, str) else f"reference[{j}]"
            raise RecipeError(file, where, f"no reference table at {ref}")
