"""The spec layer's shape: the models are a leaf, and no module of the package imports
itself back through others (module-level or lazy imports alike)."""

import ast
import subprocess
import sys
from pathlib import Path

import robust_ray

ROOT = Path(robust_ray.__file__).resolve().parent


def import_graph() -> dict[str, set[str]]:
    """module -> the package's modules it imports anywhere in its source (``a.b`` names)."""
    mods = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix("__init__").rstrip("."): p
            for p in ROOT.rglob("*.py")}  # fmt: skip
    graph = {m: set() for m in mods}
    for m, path in mods.items():
        package = m if path.name == "__init__.py" else m.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                parts = package.split(".") if package else []
                base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
                for a in node.names:
                    target = f"{base}.{a.name}".strip(".") if f"{base}.{a.name}".strip(".") in mods else base
                    if target in mods and target != m:
                        graph[m].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while (w := stack.pop()) != v:
                comp.add(w)
            comp.add(v)
            on.difference_update(comp)
            if len(comp) > 1:
                out.append(comp)

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_the_models_import_nothing_of_the_package():
    assert import_graph()["spec"] == set()


def test_no_import_circle_outside_analysis():
    # analysis/conditions <-> analysis/load is issue 13's second circle, handled there
    assert [c for c in cycles(import_graph()) if not all(m.startswith("analysis") for m in c)] == []


def test_the_graph_sees_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]


def test_reading_specs_needs_no_torch():
    code = "import sys, robust_ray.config, robust_ray.spec; print('torch' in sys.modules)"
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
        == "False"
    )
