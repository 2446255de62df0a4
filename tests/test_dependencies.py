"""Every third-party import is declared in pyproject.toml, read from the source itself.

A package installed by hand on a developer's (or CI's) Python hides a missing dependency
that a user's fresh venv does not (this happened with pyDOE3 and boto3). So: every module
``robust_ray/`` imports comes from ``[project.dependencies]`` (or an optional extra other
than ``dev``, for integrations such as trackers that the code imports only when asked),
and every module ``tests/`` or ``benchmarks/`` import from those or ``[dev]``.
"""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import tomllib

REPO = Path(__file__).resolve().parents[1]


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(req: str) -> str:
    return norm(re.split(r"[\s<>=!~;\[(]", req.strip(), maxsplit=1)[0])


def declared(pyproject: Path = REPO / "pyproject.toml") -> tuple[set[str], dict[str, set[str]]]:
    meta = tomllib.loads(pyproject.read_text())["project"]
    core = {requirement_name(r) for r in meta.get("dependencies", [])}
    extras = {k: {requirement_name(r) for r in v} for k, v in meta.get("optional-dependencies", {}).items()}
    return core, extras


def third_party_imports(folder: Path) -> dict[str, str]:
    """Top-level module -> first file importing it, leaving out the stdlib, relative imports
    and the repository's own modules (the package, and sibling helper scripts in tests/)."""
    own = {"robust_ray"} | {p.stem for p in folder.rglob("*.py")} | {p.name for p in folder.rglob("*") if p.is_dir()}
    found: dict[str, str] = {}
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in own and not top.startswith("_"):
                    found.setdefault(top, str(path.relative_to(REPO)))
    return found


def undeclared(folder: str, allowed: set[str]) -> list[str]:
    dists = {mod: {norm(d) for d in ds} for mod, ds in packages_distributions().items()}
    missing = []
    for mod, where in sorted(third_party_imports(REPO / folder).items()):
        # not installed here: only an optional integration, declared under its own name
        candidates = dists.get(mod, {norm(mod)})
        if not candidates & allowed:
            missing.append(f"{mod} (imported in {where}; distribution {', '.join(sorted(candidates))})")
    return missing


def test_the_package_imports_only_declared_dependencies():
    core, extras = declared()
    optional = set().union(*(v for k, v in extras.items() if k != "dev"))
    assert undeclared("robust_ray", core | optional) == []


def test_tests_and_benchmarks_import_only_declared_dependencies():
    core, extras = declared()
    everything = core.union(*extras.values())
    assert undeclared("tests", everything) == []
    assert undeclared("benchmarks", everything) == []


def test_the_check_fails_when_a_dependency_is_not_declared(tmp_path):
    """The check itself can fail: pyproject.toml without pyDOE3 leaves designs.py's import
    undeclared (the bug a fresh venv found)."""
    text = (REPO / "pyproject.toml").read_text()
    stripped = tmp_path / "pyproject.toml"
    stripped.write_text(re.sub(r'^\s*"pyDOE3[^\n]*\n', "", text, flags=re.M))
    core, extras = declared(stripped)
    assert "pydoe3" not in core
    optional = set().union(*(v for k, v in extras.items() if k != "dev"))
    assert any(m.startswith("pyDOE3 ") for m in undeclared("robust_ray", core | optional))
