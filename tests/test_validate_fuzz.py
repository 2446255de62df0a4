"""Hostile specs: whatever YAML ``validate`` is given, it validates (exit 0) or refuses it
(exit 2, one ``robust-ray: error:`` line), never a traceback, and answers within 10 s."""

from __future__ import annotations

import copy
import math
import signal
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from robust_ray.cli import main

QUICKSTART = yaml.safe_load((Path(__file__).resolve().parents[1] / "sweeps" / "quickstart.yaml").read_text())

ODD = st.one_of(
    st.sampled_from(
        [
            math.inf,
            -math.inf,
            math.nan,
            -1,
            0,
            1e-12,
            1e12,
            2**70,
            -(2**70),
            True,
            False,
            None,
            "",
            "x" * 300,
            [],
            {},
            [None],
            {"start": 0, "stop": 1e6, "step": 1e-6},
            {"start": 1, "stop": math.inf, "step": 1},
            [1, 1, 1],
            "lenet5",
            "mnist-5k",
        ]
    ),  # fmt: skip
    st.integers(-(2**80), 2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.lists(st.one_of(st.integers(-5, 5), st.floats(-1e3, 1e3), st.booleans()), max_size=5),
)


def _paths(tree, prefix=()):
    yield prefix
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            yield from _paths(v, (*prefix, i))


PATHS = [p for p in _paths(QUICKSTART) if p]


def _mutate(spec: dict, path: tuple, value, how: str) -> dict:
    spec = copy.deepcopy(spec)
    node = spec
    for k in path[:-1]:
        node = node[k]
    if how == "delete" and isinstance(node, dict):
        del node[path[-1]]
    elif how == "extra" and isinstance(node, dict):
        node[f"{path[-1]}_typo"] = value
    else:
        node[path[-1]] = value
    return spec


class _Hang(Exception):
    pass


def _validate(tmp_path: Path, text: bytes, capsys) -> tuple[int, str]:
    spec = tmp_path / "spec.yaml"
    spec.write_bytes(text)

    def hang(*_):
        raise _Hang

    old = signal.signal(signal.SIGALRM, hang)
    signal.alarm(10)
    try:
        code = main(["validate", str(spec)])
    except _Hang:
        pytest.fail(f"validate did not answer within 10 s on:\n{text[:500]!r}")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    return code, capsys.readouterr().err


def _check(code: int, err: str, text: bytes) -> None:
    assert code in (0, 2), text
    if code == 2:
        assert err.startswith("robust-ray: error:"), err
        assert "Traceback" not in err


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(PATHS), value=ODD, how=st.sampled_from(["set", "set", "delete", "extra"]))
def test_a_mutated_quickstart_validates_or_is_refused_cleanly(tmp_path, capsys, path, value, how):
    text = yaml.safe_dump(_mutate(QUICKSTART, path, value, how), allow_unicode=True).encode()
    _check(*_validate(tmp_path, text, capsys), text)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.one_of(st.binary(max_size=200), st.text(max_size=200).map(lambda s: s.encode("utf-16"))))
def test_bytes_that_are_not_a_spec_are_refused_cleanly(tmp_path, capsys, raw):
    code, err = _validate(tmp_path, raw, capsys)
    _check(code, err, raw)
    assert code == 2


@pytest.mark.parametrize("text", [
    b"name: x\n" + b"a: " + b"[" * 5000 + b"]" * 5000 + b"\n",
    b"name: x\nd: " + b"{a: " * 3000 + b"1" + b"}" * 3000 + b"\n",
    b"\xff\xfe" + "name: x\n".encode("utf-16-le"),
    b"name: caf\xe9\n",
    b"name: a\nname: b\n",
])  # fmt: skip
def test_deep_odd_encoded_and_duplicated_specs_are_refused_cleanly(tmp_path, capsys, text):
    code, err = _validate(tmp_path, text, capsys)
    _check(code, err, text)
    assert code == 2
