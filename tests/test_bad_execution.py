"""Bad execution settings are refused before any trial starts, with exit code 2, not a hang."""

import time

import yaml

from robust_ray.cli import main

SPEC = {
    "name": "bad",
    "architectures": ["lenet5"],
    "training": {"max_epochs": 1},
    "design": {"type": "one_factor", "factors": {"label_error": {"levels": [0.1]}}},
    "suites": {"mnist-test": {"n": 100}},
}


def write(tmp_path, **overrides):
    p = tmp_path / "spec.yaml"
    p.write_text(yaml.safe_dump({**SPEC, **overrides}))
    return str(p)


def test_address_without_a_cluster_fails_fast(tmp_path, capsys):
    t0 = time.time()
    assert main(["run", write(tmp_path), "--address", "127.0.0.1:1", "--output", str(tmp_path / "o")]) == 2
    assert "no Ray cluster reachable" in capsys.readouterr().err
    assert time.time() - t0 < 120 and not (tmp_path / "o").exists()


def test_request_no_node_can_meet(ray_session, tmp_path, capsys):
    spec = write(tmp_path, resources={"cpu": 1, "gpu": 1})
    assert main(["run", spec, "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "resources: each trial asks for 1 CPU and 1 GPU" in err and "--no-resource-check" in err
    assert not (tmp_path / "o").exists()


def test_output_that_cannot_be_written(ray_session, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["run", write(tmp_path), "--output", str(blocker / "out")]) == 2
    assert "cannot write there" in capsys.readouterr().err


def test_storage_uri_of_an_unknown_scheme(tmp_path, capsys):
    assert main(["run", write(tmp_path), "--output", "nosuchfs://bucket/x"]) == 2
    assert "not a usable location" in capsys.readouterr().err
