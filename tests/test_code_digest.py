"""The code hash in every dataset key covers exactly the modules that build datasets."""

import inspect
import shutil
from pathlib import Path

import pytest

import robust_ray
from robust_ray import cache as store
from robust_ray.factors import perturb_pool
from robust_ray.models import MODELS
from robust_ray.perturb import PERTURBATIONS
from robust_ray.plan import BUILDERS, source_digest
from robust_ray.recipes import RECIPES
from robust_ray.suites import SUITES, build_suite
from robust_ray.train import fit

ROOT = Path(robust_ray.__file__).resolve().parent


def covered(path: str) -> bool:
    rel = Path(path).resolve().relative_to(ROOT).as_posix()
    return any(rel == b or rel.startswith(b + "/") for b in BUILDERS)


def test_every_listed_module_exists():
    assert all((ROOT / b).exists() for b in BUILDERS), [b for b in BUILDERS if not (ROOT / b).exists()]


def test_the_code_that_builds_datasets_is_covered():
    builders = [store.build, store.train_reference, store.load_model, perturb_pool, build_suite, fit,
                type(RECIPES.get("standard")).__call__]  # fmt: skip
    builders += [p.fn for _, p in PERTURBATIONS.items()]
    builders += [inspect.unwrap(m.factory) for _, m in MODELS.items()]
    builders += [d.make for _, d in SUITES.items() if d.make is not None]
    files = {inspect.getsourcefile(getattr(f, "func", f)) for f in builders}  # partials: their function
    assert any(f.endswith("perturb/noise.py") for f in files)  # the walk reached the registries
    missing = {f for f in files if not covered(f)}
    assert not missing


@pytest.fixture
def package(tmp_path) -> Path:
    return Path(shutil.copytree(ROOT, tmp_path / "robust_ray", ignore=shutil.ignore_patterns("__pycache__")))


@pytest.mark.parametrize("module", ["cli.py", "sweep.py", "trial.py", "config.py", "plan.py", "search/run.py",
                                    "analysis/report.py"])  # fmt: skip
def test_editing_a_module_that_builds_nothing_keeps_the_cache(package, module):
    before = source_digest(package)
    with open(package / module, "a") as f:
        f.write("\n# an edit\n")
    assert source_digest(package) == before


@pytest.mark.parametrize("module", ["perturb/noise.py", "suites.py", "factors.py", "train.py", "cache.py"])
def test_editing_a_module_that_builds_datasets_changes_every_key(package, module):
    before = source_digest(package)
    with open(package / module, "a") as f:
        f.write("\n# an edit\n")
    assert source_digest(package) != before
