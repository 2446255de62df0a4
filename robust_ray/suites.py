"""Evaluation suites: the test set, and the test set under perturbations, as named conditions.

A suite is a list of *conditions*; each is the whole (or stratified ``n``) test split under
one perturbation at one level, so every condition has the test set's class counts. A
condition has a ``name`` (``"6.5"``, ``"SP0.1GA0.2"``, ``"fog/3"``), the ``level`` that
metrics report (L2 distance, 003's test-set number k, severity, number of pixels) and the
``params`` an analysis needs (002's p, r, a; 004's corruption and severity).

A suite is built once per sweep from the base test split with a fixed seed (it is the
benchmark, the same for every trial) and stored compactly: uint8 when clean, float16
otherwise (uint8 for the suites of 8-bit image tools: two-factor-69, corruptions, pixel).
Conditions of one perturbation share its random draw (common random numbers),
so they differ only by the level. ``levels`` in the spec pick the levels of a suite
(``mnist-c``: the L2 distances; ``corruptions``: the severities; ``two-factor-69``: the
test-set numbers k). Any registered image perturbation is also a suite ``type`` given
``levels``.

Registered suites: ``clean``/``mnist-test``, ``mnist-c`` and ``mnist-a`` (000 §2.3: Gaussian
and FGSM at 24 exact L2 levels; mnist-a needs the reference model), ``two-factor-69``
(003 Table 4), ``corruptions`` (004 §4: 19 corruptions x 5 severities, 18 on grayscale),
``pixel`` (002 §6.1: few-pixel changes by count, value range and area).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from .data import ImageSet, stratified_sample, to_float
from .perturb import PERTURBATIONS, apply_to_array
from .perturb.base import Shape, _store, apply_levels
from .perturb.composition import STAGES
from .perturb.corruptions import GRAYSCALE
from .perturb.corruptions import NAMES as CORRUPTIONS
from .perturb.pixels import FewPixelOptions, pixel_index_terms
from .registry import Registry
from .seeding import derive_seed

PAPER_L2_LEVELS = [round(0.5 * i, 1) for i in range(1, 25)]  # 0.5 ... 12.0 (000 §2.3)


@dataclass(frozen=True)
class Condition:
    """One perturbed copy of the test set."""

    name: str
    level: float  # what metrics report for it
    perturbation: str | None = None  # None: the clean test set
    plevel: float = 0.0  # the perturbation's own level
    options: dict = field(default_factory=dict)  # the perturbation's options
    params: dict = field(default_factory=dict)  # what an analysis needs to know about it


@dataclass(frozen=True)
class Suite:
    """Images of every condition stacked, condition after condition.

    ``levels[i]`` is the level image ``i`` was made at; ``condition[i]`` indexes
    ``conditions``. Suites stored before conditions existed have neither: they group by level.
    """

    data: ImageSet
    levels: np.ndarray  # [N] float32
    conditions: tuple[Condition, ...] = ()
    condition: np.ndarray | None = None  # [N] int16

    @property
    def nbytes(self) -> int:
        extra = self.condition.nbytes if self.condition is not None else 0
        return self.data.nbytes + self.levels.nbytes + extra

    def groups(self) -> Iterator[tuple[str, float, np.ndarray]]:
        """(condition name, level, image indices) for every condition, in suite order."""
        if self.condition is None:
            for level in np.unique(self.levels):
                yield f"{float(level):g}", float(level), np.flatnonzero(self.levels == level)
            return
        for ci, c in enumerate(self.conditions):
            yield c.name, c.level, np.flatnonzero(self.condition == ci)

    def unchanged(self) -> np.ndarray | None:
        """Indices of the unchanged images when the suite holds them as a condition next to
        changed ones (pixel's ``clean``, two-factor-69's ``CLEAN``), else None. Every
        condition holds the same test images in the same order (:func:`build_suite`), so
        image j of a condition is image j of these."""
        if self.condition is None or len(self.conditions) < 2:
            return None
        ref = next((ci for ci, c in enumerate(self.conditions) if c.perturbation is None), None)
        return None if ref is None else np.flatnonzero(self.condition == ref)

    def save(self, folder: Path) -> None:
        np.save(folder / "images.npy", self.data.images)
        np.save(folder / "labels.npy", self.data.labels)
        np.save(folder / "levels.npy", self.levels)
        if self.condition is not None:
            np.save(folder / "condition.npy", self.condition)
            (folder / "conditions.json").write_text(json.dumps([asdict(c) for c in self.conditions]))

    @classmethod
    def load(cls, folder: Path) -> Suite:
        data = ImageSet(np.load(folder / "images.npy"), np.load(folder / "labels.npy"))
        levels = np.load(folder / "levels.npy")
        if not (folder / "condition.npy").exists():
            return cls(data, levels)
        conds = tuple(Condition(**c) for c in json.loads((folder / "conditions.json").read_text()))
        return cls(data, levels, conds, np.load(folder / "condition.npy"))

    def condition_table(self) -> list[dict]:
        """One row per condition: name, level, perturbation, its level, options and params."""
        return [asdict(c) for c in self.conditions]


MakeConditions = Callable[[list[float], Shape], list[Condition]]


@dataclass(frozen=True)
class SuiteDef:
    name: str
    perturbation: str | None  # the one perturbation of a level suite; None: clean or named conditions
    default_levels: list[float] | None  # None: levels must be given in the spec
    description: str
    make: MakeConditions | None = None  # named-condition suites: levels -> conditions
    needs_model: bool = False  # built against a reference model (FGSM)
    clean: bool = False
    # white-box suites (pgd, autoattack) attack each trial's own model: nothing is stored,
    # the conditions are the options' epsilons (:mod:`robust_ray.whitebox`)
    whitebox: str | None = None
    # how perturbed images are stored: float16 keeps L2 levels to ~level x 2^-12 (4.7e-3 for FGSM at L2 11.5); uint8 is
    # what 8-bit image tools produce (MATLAB imnoise/imrotate on uint8, imagecorruptions,
    # few-pixel values) and halves the memory
    storage: str = "float16"

    def conditions(self, levels: list[float], shape: Shape) -> list[Condition]:
        if self.clean:
            return [Condition("clean", float(levels[0]))]
        if self.make is not None:
            return self.make(levels, shape)
        return [Condition(f"{lv:g}", float(lv), self.perturbation, float(lv)) for lv in levels]

    def check_levels(self, levels: list[float], shape: Shape | None) -> tuple[int, str] | None:
        """(index, why) of the first level this suite cannot be built at, or None."""
        if self.perturbation is not None:
            p = PERTURBATIONS.get(self.perturbation)
            for i, lv in enumerate(levels):
                if (why := p.check_level(lv, None, shape)) is not None:
                    return i, why
        elif self.make is not None:
            known = sorted({c.level for c in self.make(list(self.default_levels or []), shape or (1, 28, 28))})
            for i, lv in enumerate(levels):
                if lv not in known:
                    return i, f"suite {self.name} has no level {lv:g}; its levels are {_spans(known)}"
        return None

    def n_images(self, levels: list[float], n_test: int, shape: Shape) -> int:
        return n_test * len(self.conditions(levels, shape))

    @property
    def bytes_per_pixel(self) -> int:
        return 1 if self.clean or self.storage == "uint8" else 2


SUITES: Registry[SuiteDef] = Registry("suite")


def _spans(values: list[float]) -> str:
    """1, 2, 3, 5 -> "1-3, 5" (runs of whole numbers), for error messages."""
    out: list[list[float]] = []
    for v in values:
        if out and v == int(v) and out[-1][-1] == v - 1:
            out[-1].append(v)
        else:
            out.append([v])
    return ", ".join(f"{r[0]:g}-{r[-1]:g}" if len(r) > 2 else ", ".join(f"{x:g}" for x in r) for r in out)


def _pick(conds: list[Condition], levels: list[float]) -> list[Condition]:
    wanted = set(float(v) for v in levels)
    return [c for c in conds if c.level in wanted]


# --- 003 Table 4: the 69 two-factor test sets -------------------------------------------

TWO_FACTOR_69 = (
    "CLEAN SP0GA0.1 SP0GA0.15 SP0GA0.2 SP0.1GA0 SP0.1GA0.1 SP0.1GA0.15 SP0.1GA0.2 SP0.15GA0 "
    "SP0.15GA0.1 SP0.15GA0.15 SP0.15GA0.2 SP0.2GA0 SP0.2GA0.1 SP0.2GA0.15 SP0.2GA0.2 GA0SP0.1 GA0SP0.15 "
    "GA0SP0.2 GA0.15SP0 GA0.15SP0.1 GA0.15SP0.15 GA0.15SP0.2 GA0.1SP0 GA0.1SP0.1 GA0.1SP0.15 GA0.1SP0.2 "
    "GA0.2SP0 GA0.2SP0.1 GA0.2SP0.15 GA0.2SP0.2 SP0RR30 SP0RR60 SP0.1RR30 SP0.1RR60 SP0.15RR30 "
    "SP0.15RR60 SP0.2RR30 SP0.2RR60 SP0RL30 SP0RL60 SP0.1RO0 SP0.1RL30 SP0.1RL60 SP0.15RO0 "
    "SP0.15RL30 SP0.15RL60 SP0.2RO0 SP0.2RL30 SP0.2RL60 RR30SP0.1 RR30SP0.15 RR30SP0.2 RR30SP0 "
    "RR60SP0.1 RR60SP0.15 RR60SP0.2 RR60SP0 RO0SP0.1 RO0SP0.15 RO0SP0.2 RL30SP0 RL30SP0.1 "
    "RL30SP0.15 RL30SP0.2 RL60SP0 RL60SP0.1 RL60SP0.15 RL60SP0.2"
).split()  # type k = index + 1, in the table's order (54 prints as "RR30SP0.0" there)

_TOKEN = re.compile(r"(SP|GA|RO|RL|RR)(\d+(?:\.\d+)?)")
_STAGE = {"SP": "sp", "GA": "gaussian", "RO": "rotation", "RL": "rotation", "RR": "rotation"}


def parse_two_factor(name: str) -> tuple[str, float, float] | None:
    """``"SP0.1RL30"`` -> ("sp>rotation", 0.1, -30.0): the composition and its two stage
    levels (003: RL = rotate left = counter-clockwise = negative degrees). None for CLEAN."""
    if name == "CLEAN":
        return None
    tokens = _TOKEN.findall(name)
    if len(tokens) != 2 or "".join(t + v for t, v in tokens) != name:
        raise ValueError(f"not a two-factor test-set name of 003 Table 4: {name!r}")
    (ta, va), (tb, vb) = tokens
    sign = {"RL": -1.0}
    la, lb = sign.get(ta, 1.0) * float(va), sign.get(tb, 1.0) * float(vb)
    return f"{_STAGE[ta]}>{_STAGE[tb]}", la, lb


def _two_factor(levels: list[float], shape: Shape) -> list[Condition]:
    out = []
    for k, name in enumerate(TWO_FACTOR_69, start=1):
        parsed = parse_two_factor(name)
        if parsed is None:
            out.append(Condition(name, float(k), params={"k": k}))
            continue
        comp, la, lb = parsed
        params = {"k": k, "first": STAGES[comp.split(">")[0]], "first_level": la,
                  "second": STAGES[comp.split(">")[1]], "second_level": lb}  # fmt: skip
        out.append(Condition(name, float(k), comp, lb, {"first": la}, params))
    return _pick(out, levels)


# --- 004: common corruptions ------------------------------------------------------------


def _corruptions(levels: list[float], shape: Shape) -> list[Condition]:
    names = GRAYSCALE if shape[0] == 1 else CORRUPTIONS
    out = [
        Condition(f"{c}/{s}", float(s), f"corruption:{c}", float(s), params={"corruption": c, "severity": s})
        for c in names
        for s in range(1, 6)
    ]
    return _pick(out, levels)


# --- 002: few-pixel changes -------------------------------------------------------------

PIXEL_COUNTS = [4, 8, 16, 32, 64]  # 002 Tables 6-8
PIXEL_SHIFTS = [10, 40, 70, 100, 127]  # 002 Table 7: new value = old +- up to this (8-bit)
PIXEL_SIDES = [200 / 224, 150 / 224, 100 / 224, 50 / 224]  # 002 Table 8 position squares


def _pixel(levels: list[float], shape: Shape) -> list[Condition]:
    """002 §6.1's three experiments on images of ``shape``: count (any value, anywhere),
    value range (+-R around the old value) and position area (centred squares), after the
    unchanged images (condition ``clean``, level 0)."""
    settings = [("count", FewPixelOptions())]
    settings += [(f"range{r}", FewPixelOptions(mode="shift", value_range=2 * r / 255)) for r in PIXEL_SHIFTS]
    settings += [(f"area{round(s * 224)}", FewPixelOptions(side=s)) for s in PIXEL_SIDES]
    p = PERTURBATIONS.get("few_pixel")
    out = []
    for experiment, opts in settings:
        for n in PIXEL_COUNTS:
            if p.check_level(n, opts, shape) is not None:
                continue  # more pixels than the area holds (small images, small squares)
            terms = pixel_index_terms(n, opts, shape)
            name = f"n{n}-{opts.mode}-r{terms['r']:.3f}-a{terms['a']:.3f}"
            params = {"experiment": experiment, "n": n, **terms}
            out.append(Condition(name, float(n), "few_pixel", float(n), opts.model_dump(), params))
    # the same images unchanged: Pi's w needs each model's accuracy on exactly these images
    return [Condition("clean", 0.0, params={"experiment": "clean", "n": 0}), *_pick(out, levels)]


for _name in ("clean", "mnist-test"):
    SUITES.register(_name, SuiteDef(_name, None, [0.0], "the clean test set (000 §2.3 MNIST-Test)", clean=True))
SUITES.register(
    "mnist-c",
    SuiteDef("mnist-c", "gaussian_l2", PAPER_L2_LEVELS, "Gaussian noise at exact L2 distances (000 §2.3's MNIST-C)"),
)
SUITES.register(
    "mnist-a",
    SuiteDef(
        "mnist-a", "fgsm_l2", PAPER_L2_LEVELS,
        "FGSM transferred from the clean reference model at exact L2 distances (000 §2.3's MNIST-A)",
        needs_model=True,
    ),
)  # fmt: skip
# neutral names for 000's benchmarks: the field knows "MNIST-C" as Mu & Gilmer's 15
# corruptions, not Gaussian noise at exact L2 distances
SUITES.register(
    "gaussian-l2",
    SuiteDef("gaussian-l2", "gaussian_l2", PAPER_L2_LEVELS, "Gaussian noise at exact L2 distances (000's MNIST-C)"),
)
SUITES.register(
    "fgsm-transfer",
    SuiteDef(
        "fgsm-transfer", "fgsm_l2", PAPER_L2_LEVELS,
        "FGSM transferred from the clean reference model at exact L2 distances (000's MNIST-A)", needs_model=True,
    ),
)  # fmt: skip
SUITES.register(
    "pgd",
    SuiteDef("pgd", None, [], "white-box PGD (Madry et al. 2018) on each trained model, robust accuracy per eps",
             whitebox="pgd"),
)  # fmt: skip
SUITES.register(
    "autoattack",
    SuiteDef("autoattack", None, [], "white-box AutoAttack (Croce & Hein 2020, via ART) on each trained model",
             whitebox="autoattack"),
)  # fmt: skip
SUITES.register(
    "two-factor-69",
    SuiteDef(
        "two-factor-69",
        None,
        [float(k) for k in range(1, 70)],
        "003 Table 4: the two-factor test sets; level = k",
        _two_factor,
        storage="uint8",
    ),
)
SUITES.register(
    "corruptions",
    SuiteDef(
        "corruptions",
        None,
        [1.0, 2.0, 3.0, 4.0, 5.0],
        "004 §4: common corruptions x severities",
        _corruptions,
        storage="uint8",
    ),
)
SUITES.register(
    "pixel",
    SuiteDef(
        "pixel",
        None,
        [float(n) for n in PIXEL_COUNTS],
        "002 §6.1: few-pixel changes; level = pixels changed",
        _pixel,
        storage="uint8",
    ),
)


def suite_def(type_name: str) -> SuiteDef:
    """A registered suite, or a generic one for any registered image perturbation."""
    if type_name in SUITES:
        return SUITES.get(type_name)
    if type_name in PERTURBATIONS:
        p = PERTURBATIONS.get(type_name)
        return SuiteDef(type_name, type_name, None, f"test set under {type_name}", needs_model=p.needs_model)
    known = sorted([*SUITES, *PERTURBATIONS])
    raise KeyError(f"unknown suite type {type_name!r}; known: {', '.join(known)}")


def build_suite(
    sdef: SuiteDef,
    test: ImageSet,
    levels: list[float],
    n: int | None,
    seed: int,
    chunk: int = 4096,
    *,
    model: torch.nn.Module | None = None,
    options: dict | None = None,
) -> Suite:
    """The suite's images: ``n`` test images (stratified; all when None) under every
    condition. ``model`` is the reference model of suites that need one (mnist-a);
    ``options`` are the perturbation's options of a one-perturbation suite."""
    if n is not None and n < len(test):
        test = test.subset(stratified_sample(test.labels, n / len(test), seed))
    conds = sdef.conditions(list(levels), test.images.shape[1:])
    if sdef.clean:
        return Suite(test, np.full(len(test), conds[0].level, np.float32), tuple(conds), np.zeros(len(test), np.int16))
    if sdef.needs_model and model is None:
        raise ValueError(f"suite {sdef.name} is built against a reference model; pass model=")
    m = len(test)
    out = np.empty((len(conds) * m, *test.images.shape[1:]), np.uint8 if sdef.storage == "uint8" else np.float16)
    parts = [out[ci * m : (ci + 1) * m] for ci in range(len(conds))]
    if sdef.perturbation is not None:  # one perturbation at many levels: share its direction
        p = PERTURBATIONS.get(sdef.perturbation)
        cseed = derive_seed(seed, sdef.name, p.name)
        lv = [c.plevel for c in conds]
        apply_levels(p, test.images, lv, cseed, options, model=model, labels=test.labels, chunk=chunk, out=parts)
    else:
        for c, part in zip(conds, parts):
            if c.perturbation is None:
                _store(part, to_float(test.images))
                continue
            p = PERTURBATIONS.get(c.perturbation)
            cseed = derive_seed(seed, sdef.name, c.perturbation)  # shared by its levels
            apply_to_array(
                p, test.images, c.plevel, cseed, c.options, model=model, labels=test.labels, chunk=chunk, out=part
            )
    levels_arr = np.repeat(np.asarray([c.level for c in conds], np.float32), m)
    condition = np.repeat(np.arange(len(conds), dtype=np.int16), m)
    return Suite(ImageSet(out, np.tile(test.labels, len(conds))), levels_arr, tuple(conds), condition)
