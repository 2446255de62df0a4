"""Check a structurally valid spec against the registries, naming the key of each problem.

The ``search`` section has its own checks (:mod:`robust_ray.search.checks`, run after these
by :mod:`robust_ray.loader`); the helpers both need are public here.
"""

from __future__ import annotations

import re

from pydantic import ValidationError

from .data import DATASETS
from .designs import DESIGNS, choose_orthogonal_array
from .errors import SpecError
from .factors import factor_def
from .models import MODELS
from .perturb import PERTURBATIONS, NoOptions
from .recipes import RECIPES
from .spec import ReferenceSpec, SweepSpec
from .suites import suite_def


def known(registry, name: str, file, path: str) -> None:
    """``name`` must be in ``registry``; else the registry's own message, at ``path``."""
    if name not in registry:
        raise SpecError(file, path, registry.unknown(name))


def options_error(e: ValidationError, name: str, path: str) -> tuple[str, str]:
    """(key path, message) of the first error of an options model of ``name`` at ``path``."""
    err = e.errors()[0]
    sub = ".".join(str(p) for p in err["loc"])
    if err["type"] == "extra_forbidden":
        return f"{path}.{sub}", f"unknown option {sub!r} of {name}"
    msg = err["msg"].removeprefix("Value error, ")
    return (f"{path}.{sub}" if sub else path), msg


def check_spec(spec: SweepSpec, file: str | None = None) -> None:
    known(DATASETS, spec.dataset.name, file, "dataset.name")
    shape = DATASETS.get(spec.dataset.name).shape
    size = shape[1:]
    for i, arch in enumerate(spec.architectures):
        known(MODELS, arch, file, f"architectures[{i}]")
        if size not in MODELS.get(arch).input_sizes:
            ok = ", ".join(f"{h}x{w}" for h, w in MODELS.get(arch).input_sizes)
            raise SpecError(file, f"architectures[{i}]", f"{arch} takes inputs of size {ok}; "
                            f"{spec.dataset.name} images are {size[0]}x{size[1]}")  # fmt: skip
    if spec.design is not None:
        known(DESIGNS, spec.design.type, file, "design.type")
    _check_recipes(spec, file)

    for name, fs in spec.design.factors.items() if spec.design is not None else ():
        path = f"design.factors.{name}"
        try:
            fdef = factor_def(name)
        except KeyError as e:
            raise SpecError(file, path, e.args[0]) from None
        try:
            opts = fs.resolve_options(fdef.options)
        except ValidationError as e:
            raise SpecError(file, *options_error(e, name, path)) from None
        if not fs.levels and spec.design.type != "list":
            raise SpecError(file, f"{path}.levels", f"a {spec.design.type} design needs levels for every factor")
        for i, level in enumerate(fs.levels):
            if (why := fdef.check_level(level, opts, shape)) is not None:
                raise SpecError(file, f"{path}.levels[{i}]", why)
        if fs.baseline is not None and (why := fdef.check_level(fs.baseline, opts, shape)) is not None:
            raise SpecError(file, f"{path}.baseline", why)
        needs_model = fdef.stage == "augment" and PERTURBATIONS.get(name).needs_model
        check_reference(spec, fs.reference, needs_model, f"{path}.reference", file)

    if spec.design is not None:
        _check_design(spec, file)

    n_test = DATASETS.get(spec.dataset.name).n_test
    for key, ss in spec.suites.items():
        path = f"suites.{key}"
        if ss.n is not None and ss.n > n_test:
            raise SpecError(
                file, f"{path}.n", f"{ss.n:,} images asked for, but the {spec.dataset.name} test split has {n_test:,}"
            )
        try:
            sdef = suite_def(spec.suite_type(key))
        except KeyError as e:
            raise SpecError(file, f"{path}.type" if ss.type else path, e.args[0]) from None
        if sdef.whitebox is not None:
            _check_whitebox(spec, ss, sdef.whitebox, shape, path, file)
            continue
        if ss.levels is None and sdef.default_levels is None:
            raise SpecError(file, f"{path}.levels", f"suite type {sdef.name!r} needs levels")
        extra = ss.model_extra or {}
        if sdef.perturbation is not None and sdef.make is None:
            try:
                ss.resolve_options(PERTURBATIONS.get(sdef.perturbation).options)
            except ValidationError as e:
                raise SpecError(file, *options_error(e, sdef.perturbation, path)) from None
        elif extra:
            name = next(iter(extra))
            raise SpecError(file, f"{path}.{name}", f"unknown key {name!r} for suite {sdef.name}")
        else:
            ss.resolve_options(NoOptions)
        if ss.levels is not None and (bad := sdef.check_levels(ss.levels, shape)) is not None:
            raise SpecError(file, f"{path}.levels[{bad[0]}]", bad[1])
        check_reference(spec, ss.reference, sdef.needs_model, f"{path}.reference", file)


def _check_whitebox(spec: SweepSpec, ss, kind: str, shape, path: str, file) -> None:
    """A white-box suite's options (norm, eps, steps, ...) with its ``n`` and ``seed``,
    validated once with the image shape (the L2 bound is the diagonal of [0, 1]^CHW)."""
    from .whitebox import parse_options

    if ss.levels is not None:
        raise SpecError(file, f"{path}.levels", f"a {kind} suite's conditions are its eps values: give eps, not levels")
    if ss.reference.arch is not None or ss.reference.seed is not None:
        raise SpecError(file, f"{path}.reference", f"a {kind} suite attacks each trained model itself, not a reference")
    opts = {**(ss.model_extra or {}), "seed": ss.seed} | ({"n": ss.n} if ss.n is not None else {})
    try:
        ss._options = parse_options(kind, opts, tuple(shape))
    except ValidationError as e:
        where, msg = options_error(e, kind, path)
        if m := re.match(r"(eps\[\d+\]): (.*)", msg, re.S):  # the index is in the message: move it to the path
            where, msg = f"{path}.{m.group(1)}", m.group(2)
        raise SpecError(file, where, msg) from None


def _check_design(spec: SweepSpec, file) -> None:
    d = spec.design
    if d.type == "list":
        if not d.rows:
            raise SpecError(file, "design.rows", "a list design needs rows")
        for i, row in enumerate(d.rows):
            for name, level in row.items():
                if name not in d.factors:
                    raise SpecError(file, f"design.rows[{i}].{name}", f"{name!r} is not in design.factors")
                opts = d.factors[name].options
                if (
                    why := factor_def(name).check_level(level, opts, DATASETS.get(spec.dataset.name).shape)
                ) is not None:
                    raise SpecError(file, f"design.rows[{i}].{name}", why)
    elif d.rows:
        raise SpecError(file, "design.rows", f"rows belong to a list design, not {d.type!r}")
    if d.type == "orthogonal":
        try:
            choose_orthogonal_array([len(fs.levels) for fs in d.factors.values()])
        except ValueError as e:
            raise SpecError(file, "design.factors", str(e)) from None


def check_reference(spec: SweepSpec, ref: ReferenceSpec, needs_model: bool, path: str, file) -> None:
    """A reference model only for a perturbation that attacks one, of a known architecture."""
    if ref.arch is None and ref.seed is None:
        return
    if not needs_model:
        raise SpecError(file, path, "only a model-specific perturbation (e.g. fgsm_l2) has a reference model")
    if ref.arch is not None:
        known(MODELS, ref.arch, file, f"{path}.arch")


def _check_recipes(spec: SweepSpec, file) -> None:
    if spec.recipes is None:
        entries = [(spec.training.recipe, spec.training.recipe_options, "training.recipe", "training.recipe_options")]
    else:
        if "recipe" in spec.training.model_fields_set or spec.training.recipe_options:
            raise SpecError(file, "recipes", "give the recipes to compare here or training.recipe, not both")
        if not spec.recipes:
            raise SpecError(file, "recipes", "name at least one recipe")
        entries = [(name, opts or {}, f"recipes.{name}", f"recipes.{name}") for name, opts in spec.recipes.items()]
    for name, opts, name_path, opts_path in entries:
        known(RECIPES, name, file, name_path)
        try:
            RECIPES.get(name).options.model_validate(opts)
        except ValidationError as e:
            raise SpecError(file, *options_error(e, f"recipe {name}", opts_path)) from None
