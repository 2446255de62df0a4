"""White-box suites: ``pgd`` and ``autoattack``, attacks on each model's own weights.

Unlike the stored suites of :mod:`.suites` (images built once, replayed to every model), a
white-box suite's images depend on the model under test, so it stores only its options and
its test subset, and runs the attack where the model is (:func:`run_whitebox`). Its
conditions are its epsilons, named ``"eps=0.1"`` with level = eps; the metric of a condition
is the robust accuracy there (images right after the attack, over the ``n`` attacked).

Options are checked by pydantic here; the bounds that depend on the image size (L2 eps <=
sqrt(C H W), the diagonal of [0, 1]^d) come from ``context={"shape": (C, H, W)}`` or from
:meth:`WhiteboxOptions.check`, which names the offending key (``eps[3]``).
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from torch import nn

from . import attacks
from .data import stratified_sample

Eps = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Seed = Annotated[int, Field(strict=True, ge=0, lt=2**32)]
Shape = tuple[int, int, int]
NORM_SYMBOL = {"linf": "L∞", "l2": "L2"}
# MNIST's customary budgets: L∞ 0.1-0.3 (Madry et al. 2018 §5 trains at 0.3), L2 up to 2-3
# (Croce & Hein 2020 Table 2: eps = 2 on MNIST)
DEFAULT_EPS = {"linf": [0.1, 0.2, 0.3], "l2": [1.0, 2.0, 3.0]}


def condition_name(eps: float) -> str:
    return f"eps={eps:g}"


def _eps_problem(eps: list[float], norm: str, shape: Shape | None) -> tuple[str, str] | None:
    """L∞: (0, 1], a larger ball holds all of [0, 1]^d; L2: (0, sqrt(C H W)] when the shape
    is known (the diagonal of [0, 1]^d: no two images are farther apart)."""
    top = 1.0 if norm == "linf" else (math.sqrt(math.prod(shape)) if shape else math.inf)
    for i, e in enumerate(eps):
        if not 0 < e <= top:
            on = f" on {shape[0]}x{shape[1]}x{shape[2]} images" if shape and norm == "l2" else ""
            return f"eps[{i}]", f"{e:g} is outside (0, {top:g}] for norm {norm}{on}"
    return None


class WhiteboxOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    norm: Literal["linf", "l2"] = "linf"
    eps: list[Eps] | None = Field(None, min_length=1, max_length=100, description="budgets; default by norm")
    n: int | None = Field(1000, ge=1, description="attack this many test images (stratified); None: all")
    seed: Seed = 0

    @field_validator("eps")
    @classmethod
    def _eps(cls, v: list[float] | None, info: ValidationInfo) -> list[float] | None:
        if v is not None and len(set(v)) != len(v):
            raise ValueError("each eps once: a repeat would attack the same images twice")
        norm = info.data.get("norm")  # absent when the norm itself is invalid
        shape = (info.context or {}).get("shape")
        if v is not None and norm is not None and (bad := _eps_problem(v, norm, shape)) is not None:
            raise ValueError(f"{bad[0]}: {bad[1]}")
        return v

    @model_validator(mode="after")
    def _default_eps(self):
        if self.eps is None:
            self.eps = list(DEFAULT_EPS[self.norm])
        return self

    def check(self, shape: Shape | None) -> tuple[str, str] | None:
        """(key, why) of the first eps out of range for images of ``shape``, or None."""
        return _eps_problem(self.eps or [], self.norm, shape)

    def conditions(self) -> list[tuple[str, float]]:
        return [(condition_name(e), float(e)) for e in self.eps]


# The most model passes (forward + backward, what one training step costs an image) an
# attack may spend on one image at one eps. Attacks stop early on images already broken
# (ART's AutoAttack runs each attack on those still standing), so a robust model costs the
# most: these bound, they do not predict. The figures are attacks._art_attacks' settings.
DEEPFOOL_PASSES = 100 * 10  # max_iter 100 x nb_grads 10 class gradients
SQUARE_PASSES = 5000 / 3  # 5,000 queries, forward only: a third of a forward + backward


class PGDOptions(WhiteboxOptions):
    """PGD-k of Madry et al. 2018 (eq. (2)); see :func:`robust_ray.attacks.pgd`."""

    steps: int = Field(10, ge=1, le=1000)
    step_size: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = Field(
        None, description="alpha; default 2.5 eps / steps (Madry et al. §B)"
    )
    restarts: int = Field(1, ge=1, le=100, description="random starts; an image is robust if it survives all")

    def max_passes(self, num_classes: int) -> float:
        """Model passes per image and eps: every step of every restart (:func:`attacks.pgd`
        steps every image, broken or not)."""
        return float(self.steps * self.restarts)

    def describe(self) -> str:
        starts = f", {self.restarts} restarts" if self.restarts > 1 else ""
        return f"white-box PGD-{self.steps} {NORM_SYMBOL[self.norm]} at ε = {', '.join(f'{e:g}' for e in self.eps)}{starts}"


class AutoAttackOptions(WhiteboxOptions):
    """AutoAttack (Croce & Hein 2020) through ART; see :data:`robust_ray.attacks.AUTOATTACK_VERSIONS`.
    ``standard`` is the default because it is what "AutoAttack" means in the literature;
    ``cheap`` (APGD-CE + APGD-DLR, 20 iterations) is a screening attack to ask for by name."""

    version: Literal["standard", "rand", "cheap"] = "standard"
    attacks: list[Literal["apgd-ce", "apgd-dlr", "deepfool", "square"]] | None = Field(
        None, min_length=1, description="these attacks instead of the version's"
    )

    def max_passes(self, num_classes: int) -> float:
        """Model passes per image and eps, at most: APGD its iterations, DeepFool and Square
        as above; the targeted pass of ``standard`` runs APGD once per other class again
        (ART's AutoAttack targets only the attacks that take a target: not DeepFool, not
        Square)."""
        from .attacks import AUTOATTACK_VERSIONS

        names, iters, targeted = (self.attacks, 100, False) if self.attacks else AUTOATTACK_VERSIONS[self.version]
        cost = {"apgd-ce": iters, "apgd-dlr": iters, "deepfool": DEEPFOOL_PASSES, "square": SQUARE_PASSES}
        once = sum(cost[a] for a in names)
        again = sum(cost[a] for a in names if a.startswith("apgd")) * (num_classes - 1) if targeted else 0
        return float(once + again)

    def describe(self) -> str:
        what = "+".join(self.attacks) if self.attacks else self.version
        return f"white-box AutoAttack ({what}) {NORM_SYMBOL[self.norm]} at ε = {', '.join(f'{e:g}' for e in self.eps)}"


OPTIONS: dict[str, type[WhiteboxOptions]] = {"pgd": PGDOptions, "autoattack": AutoAttackOptions}


def parse_options(kind: str, options: dict | None, shape: Shape | None = None) -> WhiteboxOptions:
    """The validated options of white-box suite ``kind``; raises KeyError for an unknown
    kind and pydantic's ValidationError (with the key) for bad options."""
    if kind not in OPTIONS:
        raise KeyError(f"unknown white-box suite {kind!r}; known: {', '.join(OPTIONS)}")
    return OPTIONS[kind].model_validate(options or {}, context={"shape": shape})


def subset(labels: np.ndarray, n: int | None, seed: int) -> np.ndarray:
    """Indices of the ``n`` images attacked: stratified by class (each class's share kept),
    fixed by ``seed``; all of them when ``n`` is None or not smaller than the split."""
    labels = np.asarray(labels)
    if n is None or n >= len(labels):
        return np.arange(len(labels))
    return stratified_sample(labels, n / len(labels), seed)


def run_whitebox(
    model: nn.Module,
    kind: str,
    options: WhiteboxOptions | dict | None,
    images: np.ndarray | torch.Tensor,
    labels: np.ndarray | torch.Tensor,
) -> list[dict]:
    """Attack ``model`` (on its own device) on the options' stratified subset of the test
    split (``images`` uint8 or float in [0, 1], [N, C, H, W]); one row per eps: condition,
    level, n, n_correct, params."""
    labels_np = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels)
    if not isinstance(options, WhiteboxOptions):
        options = parse_options(kind, options, tuple(images.shape[1:]))
    elif (bad := options.check(tuple(images.shape[1:]))) is not None:
        raise ValueError(f"{kind}.{bad[0]}: {bad[1]}")
    idx = subset(labels_np, options.n, options.seed)
    x, y = images[idx], labels_np[idx]
    if kind == "pgd":
        res = attacks.pgd(
            model, x, y, options.eps, norm=options.norm, steps=options.steps, step_size=options.step_size,
            restarts=options.restarts, seed=options.seed,
        )  # fmt: skip
    else:
        res = attacks.autoattack(
            model,
            x,
            y,
            options.eps,
            norm=options.norm,
            version=options.version,
            attacks=options.attacks,
            seed=options.seed,
        )
    params = {"attack": kind, "norm": options.norm, **options.model_dump(exclude={"eps", "n", "seed", "norm"})}
    return [
        {"condition": condition_name(e), "level": float(e), "n": res.n, "n_correct": c, "params": {**params, "eps": e}}
        for e, c in zip(res.eps, res.correct)
    ]


def conditions(kind: str, options: WhiteboxOptions) -> list:
    """The suite's conditions as suites.json lists them: one per eps (level = eps)."""
    from .suites import Condition

    params = {"attack": kind, "norm": options.norm, "n": options.n}
    return [Condition(name, level, kind, level, {}, {**params, "eps": level}) for name, level in options.conditions()]


def describe(kind: str, options: WhiteboxOptions) -> str:
    n = f", {options.n} test images" if options.n else ""
    return options.describe() + n


def cost_note(
    key: str, options: WhiteboxOptions, n_test: int, n_train: int, epochs: int, num_classes: int
) -> str | None:
    """What ``validate`` warns of when a white-box suite may cost a trial more model passes
    than its training does (``n_train`` images x ``epochs``, at most), or None."""
    images = min(options.n or n_test, n_test)
    per = options.max_passes(num_classes)
    attack, train = images * len(options.eps or []) * per, n_train * epochs
    if attack <= train:
        return None
    cheaper = " (version: cheap, APGD-CE + APGD-DLR at 20 iterations, takes 40 an image and eps)" if isinstance(
        options, AutoAttackOptions) and options.version == "standard" and not options.attacks else ""  # fmt: skip
    return (
        f"suites.{key} may take up to {attack:,.0f} model passes a trial ({images:,} images x "
        f"{len(options.eps or [])} eps x {per:,.0f}), {attack / train:,.1f}x its training "
        f"({n_train:,} images x {epochs} epochs); fewer images (n) or eps cost less{cheaper}"
    )
