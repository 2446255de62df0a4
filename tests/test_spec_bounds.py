"""Bad input that once got through (issue 14): each is refused by ``validate`` with exit 2,
the file and the key, and one line; nothing is written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from robust_ray.cli import main

BASE = {
    "name": "bounds",
    "dataset": {"name": "mnist-5k"},
    "architectures": ["lenet5"],
    "seeds": [0],
    "design": {"type": "one_factor", "factors": {"gaussian_l2": {"levels": [2.0], "per_class": 10}}},
    "suites": {"mnist-test": {}},
}


def spec_with(tmp_path: Path, path: str, value) -> Path:
    data = yaml.safe_load(yaml.safe_dump(BASE))
    node, parts = data, path.split(".")
    for k in parts[:-1]:
        node = node.setdefault(k, {})
    node[parts[-1]] = value
    f = tmp_path / "spec.yaml"
    f.write_text(yaml.safe_dump(data))
    return f


CASES = [
    ("design.factors.gaussian_l2.levels", {"start": 1, "stop": float("inf"), "step": 1}, "design.factors.gaussian_l2.levels", "finite"),
    ("design.factors.gaussian_l2.levels", {"start": 0, "stop": 1e6, "step": 1e-6}, "design.factors.gaussian_l2.levels", "more than 10,000"),
    ("suites.mnist-c", {"levels": {"start": 0, "stop": 1e9, "step": 1}}, "suites.mnist-c.levels", "more than 10,000"),
    ("design.factors.gaussian_l2.levels", [2.0, 4.0, 2.0], "design.factors.gaussian_l2.levels", "given twice ([0] and [2])"),
    ("design.factors.gaussian_l2.levels", [2.0, float("nan")], "design.factors.gaussian_l2.levels[1]", "finite"),
    ("seeds", [-1], "seeds[0]", "greater than or equal to 0"),
    ("seeds", [2**70], "seeds[0]", "less than 4294967296"),
    ("seeds", [True], "seeds[0]", "valid integer"),
    ("seeds", [0, 1, 0], "seeds", "seed 0 is given twice"),
    ("architectures", ["lenet5", "lenet5"], "architectures", "given twice"),
    ("resources", {"cpu": float("inf")}, "resources.cpu", "finite"),
    ("resources", {"gpu": float("inf")}, "resources.gpu", "finite"),
    ("training", {"lr": float("inf")}, "training.lr", "finite"),
    ("suites.mnist-test", {"n": 1001}, "suites.mnist-test.n", "test split has 1,000"),
    ("execution", {"max_failure": 3}, "execution.max_failure", "did you mean 'max_failures'"),
    ("execution", {"retries": 3}, "execution.retries", "unknown key 'retries'"),  # not "did you mean 'recipes'"
]  # fmt: skip


@pytest.mark.parametrize("key,value,where,message", CASES, ids=[f"{c[0]}={c[1]!r}"[:60] for c in CASES])
def test_bad_values_are_refused_naming_file_and_key(tmp_path, capsys, key, value, where, message):
    f = spec_with(tmp_path, key, value)
    assert main(["validate", str(f)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"robust-ray: error: {f}: {where}: ") and message in err, err
    assert "recipes" not in err or "recipe" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.yaml"]


def test_a_hint_names_keys_of_the_same_level(tmp_path, capsys):
    f = spec_with(tmp_path, "training", {"batchsize": 3})
    assert main(["validate", str(f)]) == 2
    assert "did you mean 'batch_size'" in capsys.readouterr().err


@pytest.mark.parametrize("text,message", [
    ("name: a\nname: b\narchitectures: [lenet5]\n", "key 'name' is given twice"),
    ("name: a\nseeds: [0]\nseeds: [1]\n", "key 'seeds' is given twice"),
    ("a: " + "[" * 5000 + "]" * 5000 + "\n", "nested more than 32 levels"),
    ("a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 9) + "]\n" for i in range(8)),
     "a YAML mapping"),  # a billion laughs: small as a graph, refused as structure, not expanded
])  # fmt: skip
def test_duplicate_keys_deep_nesting_and_aliases(tmp_path, capsys, text, message):
    f = tmp_path / "spec.yaml"
    f.write_text(text)
    assert main(["validate", str(f)]) == 2
    err = capsys.readouterr().err
    assert message in err or "unknown key" in err or "required key" in err, err
    assert "Traceback" not in err


@pytest.mark.parametrize("raw,message", [
    ("name: x\n".encode("utf-16"), "UTF-16 text: save it as UTF-8"),
    (b"name: caf\xe9\n", "not UTF-8 text (byte 0xe9 at offset 9)"),
])  # fmt: skip
def test_text_that_is_not_utf8_is_refused(tmp_path, capsys, raw, message):
    f = tmp_path / "spec.yaml"
    f.write_bytes(raw)
    assert main(["validate", str(f)]) == 2
    assert message in capsys.readouterr().err


def test_a_utf8_bom_is_fine(tmp_path, capsys):
    f = spec_with(tmp_path, "name", "bom")
    f.write_bytes(b"\xef\xbb\xbf" + f.read_bytes())
    assert main(["validate", str(f)]) == 0


def test_more_data_than_memory_is_said_by_validate_and_refused_by_run(tmp_path, capsys):
    f = spec_with(tmp_path, "design.factors.gaussian_l2.per_class", 10_000_000)
    assert main(["validate", str(f)]) == 0
    assert "more than this machine's" in capsys.readouterr().out
    r = subprocess.run([sys.executable, "-m", "robust_ray", "run", str(f), "--output", str(tmp_path / "o")],
                       capture_output=True, text=True, timeout=300)  # fmt: skip
    assert r.returncode == 2 and "more than this machine's" in r.stderr and "--no-resource-check" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "o").exists()
