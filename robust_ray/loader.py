"""Loading a spec: YAML bytes -> data -> the smoke variant merged over it -> a validated
:class:`~robust_ray.spec.SweepSpec`, checked once at the edge.

The order: :func:`read_yaml` (UTF-8, each key once, bounded depth), the ``smoke:`` section
(:func:`smoke_variant`), the models' structural validation, then the registry checks
(:func:`robust_ray.checks.check_spec`, then :func:`robust_ray.search.checks.check_search`
for a ``search`` section). Every problem is reported as ``FILE: key.path[i]: message``
through :class:`SpecError`, so inner code can trust the spec it is given.
"""

from __future__ import annotations

import copy
import difflib
import re
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from .errors import SpecError
from .spec import (
    Constraint,
    DatasetSpec,
    DesignSpec,
    EarlyStopping,
    ExecutionSpec,
    FactorSpec,
    Objective,
    ReferenceSpec,
    Resources,
    SearchRange,
    SearchSpec,
    SuiteSpec,
    SweepSpec,
    TrainingSpec,
    key_path,
)  # fmt: skip


def _known_keys() -> set[str]:
    keys: set[str] = set()
    for m in (
        SweepSpec,
        DatasetSpec,
        Resources,
        TrainingSpec,
        FactorSpec,
        DesignSpec,
        SuiteSpec,
        ExecutionSpec,
        ReferenceSpec,
        SearchSpec,
        SearchRange,
        Objective,
        Constraint,
        EarlyStopping,
    ):
        keys.update(m.model_fields)
    return keys


def _fields_at(loc: tuple) -> set[str]:
    """Keys valid where ``loc`` points: walk the models, skipping mapping keys and indexes."""
    model: Any = SweepSpec
    parts = list(loc)
    while parts:
        part = parts.pop(0)
        if not (isinstance(model, type) and issubclass(model, BaseModel)) or part not in model.model_fields:
            return _known_keys()
        ann = model.model_fields[part].annotation
        while True:
            origin, args = typing.get_origin(ann), [a for a in typing.get_args(ann) if a is not type(None)]
            if origin in (dict, list):
                if parts:
                    parts.pop(0)  # the mapping key or list index
                ann = args[-1]
            elif args and origin is not None:
                ann = args[0]
            else:
                break
        model = ann
    if isinstance(model, type) and issubclass(model, BaseModel):
        return set(model.model_fields)
    return _known_keys()


def _message(err: dict) -> str:
    if err["type"] == "extra_forbidden":
        name = str(err["loc"][-1])
        close = difflib.get_close_matches(name, _fields_at(tuple(err["loc"][:-1])), n=1)
        return f"unknown key {name!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
    if err["type"] == "missing":
        return "required key is missing"
    return err["msg"].removeprefix("Value error, ")


def parse_spec(data: Any, file: str | None = None) -> SweepSpec:
    """Validate a spec already read from YAML; raise :class:`SpecError` naming the key."""
    if not isinstance(data, dict):
        raise SpecError(file, "", "a sweep spec must be a YAML mapping (key: value)")
    try:
        spec = SweepSpec.model_validate(data)
    except ValidationError as e:
        problems = [(key_path(err["loc"]), _message(err)) for err in e.errors()]
        first_path, first_msg = problems[0]
        more = "".join(f"\n  {p}: {m}" for p, m in problems[1:])
        raise SpecError(file, first_path, first_msg + more) from None
    # the registries import torch: a spec that fails to read or parse answers before it loads
    from .checks import check_spec
    from .search.checks import check_search

    check_spec(spec, file)
    if spec.search is not None:
        check_search(spec, file)
    return spec


def load_spec(path: str | Path, smoke: bool = False, sets: list[str] | tuple = ()) -> SweepSpec:
    """Read and validate a spec file; ``smoke=True`` validates its smoke-test variant
    (the ``smoke:`` section merged over it, see :func:`smoke_variant`); ``sets`` are the
    command line's ``--set KEY=VALUE`` overrides, applied last (:func:`apply_sets`)."""
    if sets:
        return _load_with_sets(Path(path), smoke, list(sets))
    path = Path(path)
    data = _read_spec_file(path)
    if not isinstance(data, dict):
        return parse_spec(data, str(path))
    overrides = data.pop(SMOKE_KEY, None)
    if overrides is not None and not isinstance(overrides, dict):
        raise SpecError(str(path), SMOKE_KEY, "the smoke-test section must be a mapping of keys to override")
    if not smoke:
        return parse_spec(data, str(path))
    if overrides is None:
        raise SpecError(str(path), "", f"--smoke-test: this spec has no '{SMOKE_KEY}:' section")
    return parse_smoke(data, overrides, str(path))


MAX_DEPTH = 32  # a spec is a few levels deep; thousands are an attack on the parser


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML that refuses a key given twice in one mapping (the second would silently win)."""


def _mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    loader.flatten_mapping(node)
    out: dict = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, "a mapping key must be a scalar", key_node.start_mark
            ) from None
        if key in out:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} is given twice in one mapping (the second would win silently)",
                key_node.start_mark,
            )  # fmt: skip
        out[key] = loader.construct_object(value_node, deep=deep)
    return out


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def _depth(node: yaml.Node) -> int:
    """Nesting depth of a composed document, each node visited once (aliases share nodes:
    a "billion laughs" document is small as a graph and must stay small here)."""
    depth, level, seen = 0, [node], set()
    while level and depth <= MAX_DEPTH:
        depth += 1
        below = []
        for n in level:
            if id(n) in seen:
                continue
            seen.add(id(n))
            if isinstance(n, yaml.MappingNode):
                below += [part for pair in n.value for part in pair]
            elif isinstance(n, yaml.SequenceNode):
                below += n.value
        level = below
    return depth


def read_yaml(raw: bytes, file: str) -> Any:
    """Spec bytes -> Python data: UTF-8 text, each key once, at most ``MAX_DEPTH`` deep."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        utf16 = raw[:2] in (b"\xff\xfe", b"\xfe\xff")
        what = "UTF-16 text" if utf16 else f"not UTF-8 text (byte {raw[e.start]:#04x} at offset {e.start})"
        raise SpecError(file, "", f"the spec is {what}: save it as UTF-8") from None
    if "\x00" in text:
        raise SpecError(file, "", "the spec holds a NUL character: is it a text file saved as UTF-8?")
    loader = None
    try:
        loader = _UniqueKeyLoader(text)
        node = loader.get_single_node()
        if node is not None and _depth(node) > MAX_DEPTH:
            raise SpecError(file, "", f"the spec is nested more than {MAX_DEPTH} levels deep")
        return loader.construct_document(node) if node is not None else None
    except RecursionError:
        raise SpecError(file, "", f"the spec is nested more than {MAX_DEPTH} levels deep") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise SpecError(file, "", f"not valid YAML{where}: {getattr(e, 'problem', e)}") from None
    finally:
        if loader is not None:
            loader.dispose()


# --- smoke-test variants ------------------------------------------------------------------

SMOKE_KEY = "smoke"


def smoke_variant(data: dict, overrides: dict) -> dict:
    """The spec ``data`` with its ``smoke:`` section merged over it: mappings merge key by
    key, ``null`` removes a key (it takes its default), anything else (a list, a number)
    replaces. The name gets ``-smoke`` unless the section sets one, so a smoke run never
    writes into the full sweep's results folder."""

    def merge(base: Any, over: Any) -> Any:
        if not (isinstance(base, dict) and isinstance(over, dict)):
            return over
        out = dict(base)
        for k, v in over.items():
            if v is None:
                out.pop(k, None)
            else:
                out[k] = merge(out.get(k), v)
        return out

    merged = merge(data, overrides)
    if "name" not in overrides and isinstance(data.get("name"), str):
        merged["name"] = f"{data['name']}-smoke"
    return merged


def _override_paths(over: Any, prefix: tuple = ()) -> list[tuple]:
    """Key paths (as tuples) that the smoke section sets: its leaves and removed keys."""
    if not isinstance(over, dict) or not over:
        return [prefix]
    return [p for k, v in over.items() for p in _override_paths(v, (*prefix, str(k)))]


def parse_smoke(data: dict, overrides: dict, file: str | None = None) -> SweepSpec:
    """Validate the smoke-test variant; an error in a key the smoke section set (or in a
    mapping it changed) is reported under ``smoke.`` (``smoke.design.factors.gaussian_l2.levels[0]``),
    one in a key it left alone under its own path, with a note that the smoke-test variant
    was checked."""
    try:
        return parse_spec(smoke_variant(data, overrides), file)
    except SpecError as e:
        parts = tuple(re.findall(r"[^.\[\]]+", e.path))
        n = len(parts)
        if parts and any(parts[: len(p)] == p or p[:n] == parts for p in _override_paths(overrides)):
            raise SpecError(e.file, f"{SMOKE_KEY}.{e.path}", e.message) from None
        raise SpecError(e.file, e.path, f"{e.message} (in the --smoke-test variant)") from None


# --- --set KEY=VALUE overrides ----------------------------------------------------------------

SET_FLAG = "--set"


def parse_set(item: str) -> tuple[tuple[str, ...], Any]:
    """``training.max_epochs=2`` -> (("training", "max_epochs"), 2): a dotted key path and a
    YAML value (``[0, 1]``, ``{n: 500}``, ``null``), read as strictly as a spec file."""
    key, sep, raw = item.partition("=")
    parts = tuple(key.strip().split("."))
    if not sep or not all(parts):
        raise SpecError(
            None, f"{SET_FLAG} {item}", "expected KEY=VALUE with a dotted key, e.g. --set training.max_epochs=2"
        )
    try:
        value = read_yaml(raw.encode(), f"{SET_FLAG} {key}") if raw.strip() else ""
    except SpecError as e:
        raise SpecError(None, f"{SET_FLAG} {key}", f"the value is not YAML: {e.message}") from None
    return parts, value


def apply_sets(data: dict, sets: list[str]) -> tuple[dict, list[tuple[str, ...]]]:
    """``data`` with each ``--set`` applied in order (later ones win; a mapping on the way
    is created when absent); also returns the key paths set."""
    out = copy.deepcopy(data)
    paths = []
    for item in sets:
        parts, value = parse_set(item)
        node = out
        for i, k in enumerate(parts[:-1]):
            nxt = node.get(k) if isinstance(node, dict) else None
            if nxt is None:
                nxt = node[k] = {}
            if not isinstance(nxt, dict):
                raise SpecError(
                    None, f"{SET_FLAG} {'.'.join(parts)}", f"{'.'.join(parts[: i + 1])} is not a mapping in the spec"
                )
            node = nxt
        node[parts[-1]] = value
        paths.append(parts)
    return out, paths


def _read_spec_file(path: Path):
    """The YAML of a spec file, or a SpecError naming the file it could not read."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise SpecError(str(path), "", f"cannot read the spec: {e.strerror}") from None
    return read_yaml(raw, str(path))


def _load_with_sets(path: Path, smoke: bool, sets: list[str]) -> SweepSpec:
    """The spec file (its smoke variant with ``smoke``) with ``sets`` applied, validated as
    one spec; an error in a key a ``--set`` gave is named after it (``--set training.max_epochs``)."""
    data = _read_spec_file(path)
    if not isinstance(data, dict):
        return parse_spec(data, str(path))
    overrides = data.pop(SMOKE_KEY, None)
    if smoke:
        if not isinstance(overrides, dict):
            raise SpecError(str(path), "", f"--smoke-test: this spec has no '{SMOKE_KEY}:' section")
        data = smoke_variant(data, overrides)
    try:
        data, paths = apply_sets(data, sets)
    except SpecError as e:
        raise SpecError(str(path), e.path, e.message) from None
    try:
        return parse_spec(data, str(path))
    except SpecError as e:
        parts = tuple(re.findall(r"[^.\[\]]+", e.path))
        for p in paths:
            if parts and (parts[: len(p)] == p or p[: len(parts)] == parts):
                raise SpecError(e.file, f"{SET_FLAG} {'.'.join(p)}", e.message) from None
        raise
