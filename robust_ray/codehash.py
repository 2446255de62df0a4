"""Which robust_ray modules import which (read from the source, nothing is imported), and the
hash of the code that builds datasets, which keys the dataset cache.

The hash covers :mod:`.datasets` (where every dataset is built) and every robust_ray module
it imports, directly or not: a fix to a perturbation, a suite, a model or the training loop
changes every content key, so the disk cache never serves a dataset the current code would
not build; an edit to the CLI, the Ray edge, search or analysis changes none.
"""

from __future__ import annotations

import ast
import functools
import hashlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent
BUILDER = "robust_ray.datasets"


def modules(root: Path = ROOT) -> dict[str, Path]:
    """Dotted module name -> source file, for every module of the package at ``root``."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _runtime_nodes(tree: ast.AST):
    """Every node of ``tree`` but those under ``if TYPE_CHECKING:`` (imports for type hints
    only, never run: they cannot make a circle)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """Module -> the package's modules it imports, wherever in the file (lazy imports inside
    functions count: they run too)."""
    mods = modules(root)
    graph = {}
    for name, path in mods.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        found = set()
        for node in _runtime_nodes(ast.parse(path.read_bytes())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
                # a name may be a submodule: `from . import data` imports robust_ray.data, and
                # the package itself only for names that are not modules
                subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in mods]
                targets = subs + ([base] if len(subs) < len(node.names) else [])
            else:
                continue
            found.update(t for t in targets if t in mods and t != name)
        graph[name] = found
    return graph


def closure(graph: dict[str, set[str]], start: str) -> set[str]:
    """``start`` and every module it imports, directly or not."""
    seen, todo = set(), [start]
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo.extend(graph.get(m, ()))
    return seen


def builder_modules(root: Path = ROOT) -> list[str]:
    """The modules whose code can change the bytes of a built dataset."""
    return sorted(closure(import_graph(root), BUILDER))


def code_digest(root: Path = ROOT) -> str:
    """A hash of the source of :func:`builder_modules`."""
    return _digest(root)


@functools.cache
def _digest(root: Path) -> str:
    mods = modules(root)
    h = hashlib.sha256()
    for name in builder_modules(root):
        h.update(name.encode() + b"\0" + mods[name].read_bytes())
    return h.hexdigest()[:16]
