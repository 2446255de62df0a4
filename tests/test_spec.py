"""Bad specs: exit code 2, one message naming the file and the key path, nothing written."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from robust_ray.cli import main
from robust_ray.config import load_spec

GOOD = {
    "name": "tiny",
    "dataset": {"name": "mnist-5k"},
    "architectures": ["lenet5"],
    "design": {
        "type": "one_factor",
        "factors": {"gaussian_l2": {"levels": [1.0, 2.0]}, "label_error": {"levels": [0.1]}},
    },
    "suites": {"mnist-test": {}, "mnist-c": {"levels": [1.0, 2.0]}},
}


def write(tmp_path: Path, spec: dict) -> Path:
    p = tmp_path / "spec.yaml"
    p.write_text(yaml.safe_dump(spec))
    return p


def with_(path: str, value):
    """GOOD with the key at dotted ``path`` set to ``value`` (a deep copy)."""
    spec = yaml.safe_load(yaml.safe_dump(GOOD))
    node, keys = spec, path.split(".")
    for k in keys[:-1]:
        node = node[int(k)] if isinstance(node, list) else node.setdefault(k, {})
    node[keys[-1]] = value
    return spec


def test_good_spec_loads_and_expands_level_ranges(tmp_path):
    spec = load_spec(write(tmp_path, with_("suites.mnist-c.levels", {"start": 0.5, "stop": 2.0, "step": 0.5})))
    assert spec.suites["mnist-c"].levels == [0.5, 1.0, 1.5, 2.0]


BAD = [
    (with_("training.lrr", 0.1), "training.lrr", "unknown key 'lrr' (did you mean 'lr'?)"),
    (with_("training.batch_size", "big"), "training.batch_size", "integer"),
    (with_("architectures", ["lenet7"]), "architectures[0]", "unknown architecture 'lenet7'"),
    (with_("dataset.name", "imagenet"), "dataset.name", "unknown dataset 'imagenet'"),
    (with_("design.factors.blur_l2", {"levels": [1]}), "design.factors.blur_l2", "unknown factor 'blur_l2'"),
    (with_("design.factors.gaussian_l2.levels", [1.0, -2.0]), "design.factors.gaussian_l2.levels[1]", "below 0"),
    (with_("design.factors.label_error.levels", [0.1, 1.0]), "design.factors.label_error.levels[1]", "[0.0, 1.0)"),
    (with_("design.factors.gaussian_l2.per_clas", 5), "design.factors.gaussian_l2.per_clas", "unknown option"),
    (with_("design.type", "latin"), "design.type", "unknown design 'latin'"),
    (with_("suites.mnist-z", {}), "suites.mnist-z", "unknown suite type 'mnist-z'"),
    (with_("suites.noisy", {"type": "gaussian_l2"}), "suites.noisy.levels", "needs levels"),
    (with_("resources.gpu", 1.5), "resources.gpu", "whole number of GPUs"),
    (with_("name", "bad name!"), "name", "pattern"),
]


@pytest.mark.parametrize("spec,path,message", BAD, ids=[b[1] for b in BAD])
def test_bad_spec_names_file_and_key_and_exits_2(tmp_path, capsys, spec, path, message):
    f = write(tmp_path, spec)
    out = tmp_path / "out"
    assert main(["run", str(f), "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{f}: {path}: " in err and message in err, err
    assert not out.exists()


def test_missing_file_and_broken_yaml(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "nope.yaml")]) == 2
    assert "nope.yaml: cannot read the spec" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\n  design: [\n")
    assert main(["validate", str(bad)]) == 2
    assert "not valid YAML (line" in capsys.readouterr().err


def test_validate_prints_plan_with_memory(capsys, tmp_path):
    assert main(["validate", str(write(tmp_path, GOOD))]) == 0
    out = capsys.readouterr().out
    assert "4 trials" in out and "MiB" in out and "design.factors.gaussian_l2.levels[1]" in out


def test_exit_code_is_2_from_the_console(tmp_path):
    f = write(tmp_path, with_("architectures", ["lenet7"]))
    r = subprocess.run([sys.executable, "-m", "robust_ray", "validate", str(f)], capture_output=True, text=True)
    assert r.returncode == 2 and "architectures[0]" in r.stderr


def test_data_root_without_mnist_says_where_and_how(tmp_path, capsys):
    spec = with_("dataset", {"name": "mnist", "root": str(tmp_path / "empty"), "download": False})
    out = tmp_path / "out"
    assert main(["run", str(write(tmp_path, spec)), "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "empty" / "MNIST" / "raw") in err and "download=True" in err
    assert not out.exists()


def test_suite_keys_whose_sql_column_names_collide_are_refused():
    from robust_ray.config import parse_spec
    from robust_ray.errors import SpecError

    spec = {
        "name": "x",
        "architectures": ["lenet5"],
        "design": {"factors": {"label_error": {"levels": [0.1]}}},
        "suites": {"mnist-c": {}, "mnist_c": {"type": "mnist-c"}},
    }
    with pytest.raises(SpecError, match="share the SQL column name acc_mnist_c"):
        parse_spec(spec)
