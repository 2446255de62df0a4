"""Dataset keys: what a built dataset is made of, one small frozen class per kind, each with
its digest, description, size, build, save and load. Equal keys mean equal bytes, so a
dataset is built once (per sweep in the object store, across sweeps in the disk cache).

- :class:`ModelKey`: a clean-trained reference model (what FGSM pools and suites attack,
  000 §2.2.1, §2.3);
- :class:`PoolKey`: the perturbed copies an augment factor adds at one level (000 eq. 1-2);
- :class:`SuiteKey`: a benchmark suite's test images at its levels.

Options (a perturbation's, a suite's) and training settings are canonical JSON strings: the
field stays hashable and its text is what the digest hashes. The code that builds datasets
is hashed into every digest (:func:`code_digest`), so this module is one of :data:`BUILDERS`.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import ClassVar

import numpy as np

from . import __version__

# The source that builds datasets: cache.build and everything it calls (the clean data,
# the standard recipe's training loop and models for reference models, factors and the
# perturbations for pools, suites). Its hash is part of every dataset key; editing any
# other module (cli, sweep, trial, the spec layer, search, analysis) keeps the cache.
# A folder stands for every module in it. tests/test_code_digest.py checks the list.
BUILDERS = ("data.py", "factors.py", "models", "perturb", "recipes.py", "seeding.py", "cache.py", "keys.py",
            "suites.py", "train.py")  # fmt: skip


def source_digest(root: Path, modules: tuple[str, ...] = BUILDERS) -> str:
    """A hash of ``modules`` (paths under the package folder ``root``), by path and content."""
    h = hashlib.sha256()
    for entry in modules:
        path = root / entry
        for file in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            h.update(file.relative_to(root).as_posix().encode() + b"\0" + file.read_bytes())
    return h.hexdigest()[:16]


@functools.cache
def code_digest() -> str:
    """A hash of the source that builds datasets (:data:`BUILDERS`): a fix to a perturbation,
    a suite or the training loop changes every digest, so the disk cache never serves a
    dataset the current code would not build."""
    return source_digest(Path(__file__).resolve().parent)


@dataclass(frozen=True)
class DatasetKey:
    """The fields every key has; the subclasses add theirs."""

    kind: ClassVar[str] = ""
    dataset: str

    @property
    def p(self) -> dict:
        """The fields by name (``key.p["reference"]``)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @property
    def params(self) -> tuple:
        """Sorted (name, value) pairs: what the digest hashes."""
        return tuple(sorted((k, list(v) if isinstance(v, tuple) else v) for k, v in self.p.items()))

    @property
    def digest(self) -> str:
        blob = json.dumps([__version__, code_digest(), self.kind, self.params], sort_keys=True, default=str)
        return f"{self.kind}-{hashlib.sha256(blob.encode()).hexdigest()[:16]}"

    def against(self, datasets: dict[str, DatasetKey]) -> str:
        ref = getattr(self, "reference", None)
        if not ref:
            return ""
        r = datasets[ref]
        return f" against {r.arch} seed {r.seed}"

    def describe(self, datasets: dict[str, DatasetKey]) -> str:  # pragma: no cover - every kind has its own
        raise NotImplementedError

    def nbytes(self) -> int:  # pragma: no cover
        raise NotImplementedError

    def build(self, base, model=None):  # pragma: no cover - ``model``: the reference, loaded
        raise NotImplementedError

    def save(self, folder: Path, obj) -> None:  # pragma: no cover
        raise NotImplementedError

    def load(self, folder: Path):  # pragma: no cover
        raise NotImplementedError

    def _info(self):
        from .data import DATASETS

        return DATASETS.get(self.dataset)


@dataclass(frozen=True)
class ModelKey(DatasetKey):
    """A clean-trained model of ``arch`` and ``seed`` (the standard recipe, ``training``)."""

    kind: ClassVar[str] = "model"
    arch: str = ""
    seed: int = 0
    training: str = "{}"  # TrainingSpec as canonical JSON

    def describe(self, datasets) -> str:
        return f"reference model {self.arch} seed {self.seed} (clean data, standard recipe)"

    def nbytes(self) -> int:  # float32 weights
        from .models import build_model, count_parameters

        info = self._info()
        return 4 * count_parameters(build_model(self.arch, info.shape[0], info.num_classes, info.shape[1:]))

    def build(self, base, model=None) -> dict[str, np.ndarray]:
        """000: FGSM is computed against the model trained on the clean set."""
        from .models import build_model
        from .recipes import RECIPES
        from .seeding import seed_everything
        from .spec import TrainingSpec
        from .train import pick_device

        settings = TrainingSpec.model_validate(json.loads(self.training))
        seed_everything(self.seed)
        c, h, w = base.train.images.shape[1:]
        model = build_model(self.arch, c, base.num_classes, (h, w))  # trained here: no reference
        RECIPES.get("standard")(model, base.train, settings, self.seed, pick_device(settings.device))
        return {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}

    def save(self, folder: Path, obj) -> None:
        np.savez(folder / "state.npz", **obj)

    def load(self, folder: Path):
        with np.load(folder / "state.npz") as z:
            return {k: z[k] for k in z.files}


@dataclass(frozen=True)
class PoolKey(DatasetKey):
    """``per_class`` copies per class perturbed by ``perturbation`` at ``level``."""

    kind: ClassVar[str] = "pool"
    perturbation: str = ""
    level: float = 0.0
    per_class: int = 0
    options: str = "{}"  # the perturbation's options, canonical JSON
    seed: int = 0
    reference: str | None = None  # a ModelKey's digest where the perturbation attacks a model

    def describe(self, datasets) -> str:
        extra = "".join(f", {k}={v}" for k, v in json.loads(self.options).items())
        return f"{self.perturbation} at {self.level:g}{extra}: {self.per_class} per class{self.against(datasets)}"

    def nbytes(self) -> int:
        info = self._info()
        return self.per_class * info.num_classes * (int(np.prod(info.shape)) * 2 + 8)

    def build(self, base, model=None):
        from .factors import perturb_pool

        return perturb_pool(base.train, self.perturbation, self.level, self.per_class, self.seed, base.num_classes,
                            json.loads(self.options), model=model)  # fmt: skip

    def save(self, folder: Path, obj) -> None:
        np.save(folder / "images.npy", obj.images)
        np.save(folder / "labels.npy", obj.labels)

    def load(self, folder: Path):
        from .data import ImageSet

        return ImageSet(np.load(folder / "images.npy"), np.load(folder / "labels.npy"))


@dataclass(frozen=True)
class SuiteKey(DatasetKey):
    """A suite of ``type`` at ``levels`` on ``n`` test images (0: all)."""

    kind: ClassVar[str] = "suite"
    type: str = ""
    levels: tuple[float, ...] = ()
    n: int = 0
    seed: int = 0
    options: str = "{}"
    reference: str | None = None

    def describe(self, datasets) -> str:
        extra = "".join(f", {k}={v}" for k, v in json.loads(self.options).items())
        n = f"{self.n} test images" if self.n else "all test images"
        return f"{self.type} at {len(self.levels)} level(s){extra}, {n}{self.against(datasets)}"

    def nbytes(self) -> int:
        from .suites import suite_def

        info, sdef = self._info(), suite_def(self.type)
        n = sdef.n_images(list(self.levels), min(self.n or info.n_test, info.n_test), info.shape)
        return n * (int(np.prod(info.shape)) * sdef.bytes_per_pixel + 8 + 4 + 2)

    def build(self, base, model=None):
        from .suites import build_suite, suite_def

        return build_suite(suite_def(self.type), base.test, list(self.levels), self.n, self.seed, model=model,
                           options=json.loads(self.options))  # fmt: skip

    def save(self, folder: Path, obj) -> None:
        obj.save(folder)

    def load(self, folder: Path):
        from .suites import Suite

        return Suite.load(folder)
