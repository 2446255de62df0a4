"""Check a spec's ``search`` section before any trial runs, naming the key of each problem:
ranges (empty, inverted, off the factor's levels, steps that do not divide them), factor
options, training settings, recipe options, objectives and constraints on metrics no trial reports."""

from __future__ import annotations

import math

from pydantic import ValidationError

from ..checks import check_reference, options_error
from ..data import DATASETS
from ..errors import SpecError
from ..factors import factor_def
from ..perturb import PERTURBATIONS
from ..recipes import RECIPES
from ..spec import SearchRange, SweepSpec, TrainingSpec
from .dims import OPTIONS, TRAINING, is_integer, option_column, recipe_of, split, training_column

EPOCH_METRICS = ("val_acc", "train_loss")  # what every epoch reports (ASHA's rungs)
FINAL_METRICS = ("val_acc", "train_acc")  # besides acc_<suite>, what a finished trial reports


def trial_metrics(spec: SweepSpec) -> list[str]:
    """Every metric a finished trial reports: one accuracy per suite, and the fit's own."""
    return [f"acc_{k}" for k in spec.suites] + list(FINAL_METRICS)


def check_search(spec: SweepSpec, file: str | None = None) -> None:
    s = spec.search
    if len(spec.architectures) != 1:
        raise SpecError(file, "architectures", "a search trains one architecture; run one search per architecture")
    if len(spec.seeds) != 1:
        raise SpecError(file, "seeds", "a search trains one seed per point; run one search per seed")
    if len(spec.recipe_list()) != 1:
        raise SpecError(file, "recipes", "a search trains one recipe; run one search per recipe")
    if s.storage and s.storage.lower().startswith("sqlite"):
        raise SpecError(
            file, "search.storage",
            "SQLite locks the whole file on every write and fails under parallel trials: give a journal file "
            "path (the default) or a server database URL (postgresql://, mysql://)",
        )  # fmt: skip
    for name, r in s.space.items():
        _check_dimension(spec, name, r, f"search.space.{name}", file)
    # warm-start points are not known until the folders are read: once they and the trials
    # fill the space, the searcher stops early instead (StudySearch answers FINISHED)
    points = _points(s.space, recipe_of(spec))
    if points is not None and s.trials > points:
        raise SpecError(
            file, "search.trials",
            f"{s.trials} trials, but the space holds {points} points and a point trained again gives the same "
            f"model (same levels, same seed): at most {points} trials (or a grid: robust-ray run)",
        )  # fmt: skip
    known = trial_metrics(spec)
    seen = set()
    for i, o in enumerate(s.objectives):
        _check_metric(o.metric, known, f"search.objectives[{i}].metric", file)
        if o.metric in seen:
            raise SpecError(file, f"search.objectives[{i}].metric", f"{o.metric} is already an objective")
        seen.add(o.metric)
    for i, c in enumerate(s.constraints):
        path = f"search.constraints[{i}]"
        _check_metric(c.metric, known, f"{path}.metric", file)
        if c.min is None and c.max is None:
            raise SpecError(file, path, "a constraint needs min, max or both")
        if c.min is not None and c.max is not None and c.min > c.max:
            raise SpecError(file, f"{path}.min", f"min {c.min:g} is above max {c.max:g}: nothing is feasible")
    if s.early_stopping is not None and s.early_stopping.grace_epochs >= spec.training.max_epochs:
        raise SpecError(
            file, "search.early_stopping.grace_epochs",
            f"grace_epochs {s.early_stopping.grace_epochs} leaves nothing to stop below "
            f"training.max_epochs {spec.training.max_epochs}",
        )  # fmt: skip


def _points(space: dict[str, SearchRange], recipe: str) -> int | None:
    """How many points a wholly discrete space holds (None: some dimension is continuous)."""
    n = 1
    for name, r in space.items():
        if r.choices is not None:
            n *= len(r.choices)
        elif r.step is not None or is_integer(name, recipe):
            n *= int(round((r.high - r.low) / (r.step or 1))) + 1
        else:
            return None
    return n


def _check_metric(metric: str, known: list[str], path: str, file) -> None:
    if metric not in known:
        raise SpecError(file, path, f"no trial reports {metric!r} (no such suite); known metrics: {', '.join(known)}")


def _values(r: SearchRange, path: str) -> list[tuple[str, float]]:
    """(key path, value) of every level the dimension names: its ends or its choices."""
    if r.choices is not None:
        return [(f"{path}.choices[{i}]", c) for i, c in enumerate(r.choices)]
    return [(f"{path}.low", r.low), (f"{path}.high", r.high)]


def _check_range(name: str, r: SearchRange, path: str, file, whole: bool) -> None:
    if r.choices is not None:
        if r.low is not None or r.high is not None or r.step is not None or r.log:
            raise SpecError(file, f"{path}.choices", "give either choices or a range (low, high, step, log), not both")
        if not r.choices:
            raise SpecError(file, f"{path}.choices", "an empty list of choices")
        dup = next((i for i, c in enumerate(r.choices) if c in r.choices[:i]), None)
        if dup is not None:
            raise SpecError(file, f"{path}.choices[{dup}]", f"{r.choices[dup]:g} is listed twice")
        return
    if r.low is None or r.high is None:
        raise SpecError(
            file, f"{path}.{'low' if r.low is None else 'high'}", "a range needs low and high (or give choices)"
        )
    for key, v in (("low", r.low), ("high", r.high)):
        if not math.isfinite(v):
            raise SpecError(file, f"{path}.{key}", f"{v} is not a finite number")
    if r.low > r.high:
        raise SpecError(file, f"{path}.low", f"inverted range: low {r.low:g} is above high {r.high:g}")
    if r.low == r.high:
        raise SpecError(
            file, f"{path}.low", f"empty range: low = high = {r.low:g} (to fix the value, give choices: [{r.low:g}])"
        )
    if r.log and r.low <= 0:
        raise SpecError(file, f"{path}.low", f"a log range needs low > 0, not {r.low:g}")
    if r.log and r.step is not None:
        raise SpecError(file, f"{path}.log", "a range is either log-scaled or stepped, not both")
    if whole:
        for key, v in (("low", r.low), ("high", r.high), ("step", r.step)):
            if v is not None and v != int(v):
                raise SpecError(file, f"{path}.{key}", f"{name} takes whole numbers, not {v:g}")
    if r.step is not None:
        n = (r.high - r.low) / r.step
        if n < 1 - 1e-9:
            raise SpecError(file, f"{path}.step", f"step {r.step:g} is longer than the range {r.low:g} to {r.high:g}")
        if abs(n - round(n)) > 1e-9 * max(1.0, n):
            raise SpecError(
                file, f"{path}.step", f"high - low = {r.high - r.low:g} is not a multiple of step {r.step:g}"
            )


def _check_dimension(spec: SweepSpec, name: str, r: SearchRange, path: str, file) -> None:
    kind, setting = split(name)
    if kind == "option":
        _check_option(spec, name, r, path, file)
        return
    if kind == "training":
        field = TrainingSpec.model_fields.get(setting)
        if field is None or field.annotation not in (int, float):
            numeric = [training_column(k) for k, f in TrainingSpec.model_fields.items() if f.annotation in (int, float)]
            raise SpecError(
                file, path, f"not a numeric training setting; searchable: {', '.join(numeric)}, {OPTIONS}<option>"
            )
        _no_factor_keys(r, path, file)
        _check_range(name, r, path, file, is_integer(name))
        for at, v in _values(r, path):
            try:
                TrainingSpec.model_validate({**spec.training.model_dump(), setting: int(v) if is_integer(name) else v})
            except ValidationError as e:
                raise SpecError(file, at, e.errors()[0]["msg"].removeprefix("Value error, ")) from None
        return
    if name == "training":
        raise SpecError(
            file, path, "search training settings as training.<setting> keys, e.g. 'training.lr: {low: ..., high: ...}'"
        )
    try:
        fdef = factor_def(name)
    except KeyError as e:
        raise SpecError(file, path, e.args[0] + f" (or {TRAINING}<setting>)") from None
    try:
        opts = r.resolve_options(fdef.options)
    except ValidationError as e:
        raise SpecError(file, *options_error(e, name, path)) from None
    _check_range(name, r, path, file, is_integer(name))
    shape = DATASETS.get(spec.dataset.name).shape
    for at, v in _values(r, path):
        if (why := fdef.check_level(v, opts, shape)) is not None:
            raise SpecError(file, at, why)
    needs_model = fdef.stage == "augment" and PERTURBATIONS.get(name).needs_model
    check_reference(spec, r.reference, needs_model, f"{path}.reference", file)


def _no_factor_keys(r: SearchRange, path: str, file) -> None:
    """A training setting or recipe option is a range only: no factor options, no reference."""
    extra = r.model_extra or {}
    if extra or "reference" in r.model_fields_set:
        key = next(iter(extra), "reference")
        raise SpecError(file, f"{path}.{key}", f"unknown key {key!r} for a training setting")


def _check_option(spec: SweepSpec, name: str, r: SearchRange, path: str, file) -> None:
    """``training.recipe_options.<key>``: a numeric option of the search's one recipe, each
    end (or choice) valid for the recipe's options model, with the spec's other options."""
    recipe, options = spec.recipe_list()[0]
    model = RECIPES.get(recipe).options
    key = split(name)[1]
    numeric = [k for k, f in model.model_fields.items() if f.annotation in (int, float)]
    searchable = (
        f"searchable: {', '.join(option_column(k) for k in numeric)}" if numeric else "it has no numeric option"
    )
    if key not in model.model_fields:
        raise SpecError(file, path, f"recipe {recipe} has no option {key!r}; {searchable}")
    if key not in numeric:
        raise SpecError(file, path, f"option {key!r} of recipe {recipe} is not a number; {searchable}")
    _no_factor_keys(r, path, file)
    whole = is_integer(name, recipe)
    _check_range(name, r, path, file, whole)
    for at, v in _values(r, path):
        try:
            model.model_validate({**options, key: int(v) if whole else v})
        except ValidationError as e:
            raise SpecError(
                file, at, f"option {key} of recipe {recipe}: " + e.errors()[0]["msg"].removeprefix("Value error, ")
            ) from None
