"""Check a structurally valid spec against the registries, naming the key of each problem."""

from __future__ import annotations

from .config import SweepSpec
from .data import DATASETS
from .designs import DESIGNS
from .errors import SpecError
from .factors import factor_def
from .models import MODELS
from .perturb import PERTURBATIONS
from .recipes import RECIPES
from .suites import suite_def
from pydantic import ValidationError


def _known(registry, name: str, file, path: str) -> None:
    if name not in registry:
        raise SpecError(file, path, registry.unknown(name))


def check_spec(spec: SweepSpec, file: str | None = None) -> None:
    _known(DATASETS, spec.dataset.name, file, "dataset.name")
    size = DATASETS.get(spec.dataset.name).shape[1:]
    for i, arch in enumerate(spec.architectures):
        _known(MODELS, arch, file, f"architectures[{i}]")
        if size not in MODELS.get(arch).input_sizes:
            ok = ", ".join(f"{h}x{w}" for h, w in MODELS.get(arch).input_sizes)
            raise SpecError(file, f"architectures[{i}]", f"{arch} takes inputs of size {ok}; "
                            f"{spec.dataset.name} images are {size[0]}x{size[1]}")  # fmt: skip
    _known(DESIGNS, spec.design.type, file, "design.type")
    _known(RECIPES, spec.training.recipe, file, "training.recipe")
    try:
        RECIPES.get(spec.training.recipe).options.model_validate(spec.training.recipe_options)
    except ValidationError as e:
        err = e.errors()[0]
        sub = ".".join(str(p) for p in err["loc"])
        unknown = err["type"] == "extra_forbidden"
        msg = f"unknown option {sub!r} of recipe {spec.training.recipe}" if unknown else err["msg"]
        raise SpecError(file, f"training.recipe_options.{sub}", msg) from None

    for name, fs in spec.design.factors.items():
        path = f"design.factors.{name}"
        try:
            fdef = factor_def(name)
        except KeyError as e:
            raise SpecError(file, path, e.args[0]) from None
        try:
            fdef.options.model_validate(fs.model_extra or {})
        except ValidationError as e:
            err = e.errors()[0]
            sub = ".".join(str(p) for p in err["loc"])
            msg = f"unknown option {sub!r} of {name}" if err["type"] == "extra_forbidden" else err["msg"]
            raise SpecError(file, f"{path}.{sub}", msg) from None
        for i, level in enumerate(fs.levels):
            if (why := fdef.check_level(level)) is not None:
                raise SpecError(file, f"{path}.levels[{i}]", why)
        if fs.baseline is not None and (why := fdef.check_level(fs.baseline)) is not None:
            raise SpecError(file, f"{path}.baseline", why)

    for key, ss in spec.suites.items():
        path = f"suites.{key}"
        try:
            sdef = suite_def(spec.suite_type(key))
        except KeyError as e:
            raise SpecError(file, f"{path}.type" if ss.type else path, e.args[0]) from None
        if ss.levels is None and sdef.default_levels is None:
            raise SpecError(file, f"{path}.levels", f"suite type {sdef.name!r} needs levels")
        if ss.levels is not None and sdef.perturbation is not None:
            check = PERTURBATIONS.get(sdef.perturbation).check_level
            for i, level in enumerate(ss.levels):
                if (why := check(level)) is not None:
                    raise SpecError(file, f"{path}.levels[{i}]", why)
