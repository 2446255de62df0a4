"""``--set KEY=VALUE``: spec overrides from the command line, validated like the file,
errors named after the flag (exit 2), the effective spec what a run stores."""

from __future__ import annotations

import json

import pytest

from robust_ray import cli
from robust_ray.errors import UserError
from robust_ray.loader import load_spec

SPEC = """name: q
architectures: [lenet5]
training: {max_epochs: 3}
design:
  factors:
    label_error: {levels: [0.1]}
suites: {mnist-test: {n: 100}}
smoke: {training: {max_epochs: 1}}
"""


@pytest.fixture
def spec_file(tmp_path):
    path = tmp_path / "q.yaml"
    path.write_text(SPEC)
    return str(path)


def test_values_are_yaml_and_applied_after_the_smoke_variant(spec_file):
    spec = load_spec(spec_file, sets=["training.max_epochs=2", "seeds=[0, 1]", "suites.mnist-test.n=50"])
    assert spec.training.max_epochs == 2 and spec.seeds == [0, 1] and spec.suites["mnist-test"].n == 50
    smoke = load_spec(spec_file, smoke=True, sets=["seeds=[3]"])
    assert smoke.name == "q-smoke" and smoke.training.max_epochs == 1 and smoke.seeds == [3]
    assert load_spec(spec_file, smoke=True, sets=["training.max_epochs=5"]).training.max_epochs == 5  # later wins


@pytest.mark.parametrize(
    "flag, message",
    [
        ("training.max_epochs=0", "--set training.max_epochs: Input should be greater than or equal to 1"),
        ("training.max_epoch=2", "--set training.max_epoch: unknown key 'max_epoch' (did you mean 'max_epochs'?)"),
        ("seeds=[0,0]", "--set seeds: seed 0 is given twice"),
        ("training.max_epochs=[1", "--set training.max_epochs: the value is not YAML"),
        ("training", "--set training: expected KEY=VALUE"),
        ("training.max_epochs.x=1", "--set training.max_epochs.x: training.max_epochs is not a mapping"),
    ],
)
def test_a_bad_override_is_named_after_the_flag_and_exits_2(spec_file, capsys, flag, message):
    assert cli.main(["validate", spec_file, "--set", flag]) == 2
    err = capsys.readouterr().err
    assert f"{spec_file}: {message}" in err


def test_validate_prints_the_overridden_plan(spec_file, capsys):
    assert cli.main(["validate", spec_file, "--set", "seeds=[0,1,2]"]) == 0
    assert "6 trials = 2 training sets x 1 architecture(s) x 1 recipe(s) x 3 seed(s)" in capsys.readouterr().out


def test_run_gets_the_effective_spec_and_its_resume_line_repeats_the_sets(spec_file, monkeypatch, capsys):
    seen = {}

    def fake_run(spec, run):
        from robust_ray.runtime import spec_json

        seen["sweep.json"] = json.loads(spec_json(spec))  # what run_sweep writes as sweep.json
        raise UserError("stop here")

    monkeypatch.setattr("robust_ray.sweep.run_sweep", fake_run)
    assert cli.main(["run", spec_file, "--set", "training.max_epochs=2", "--set", "seeds=[0, 1]"]) == 2
    assert seen["sweep.json"]["training"]["max_epochs"] == 2 and seen["sweep.json"]["seeds"] == [0, 1]
    args = cli.parser().parse_args(["run", spec_file, "--set", "seeds=[0, 1]"])
    assert cli.resume_command(args, "run", "out").endswith("--resume --set 'seeds=[0, 1]'")
