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


def test_address_without_a_cluster_fails_fast(ray_session, tmp_path, capsys):
    """Also where this process already holds a Ray (here the test session's): --address names
    another cluster, and that one is not there."""
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


def test_a_level_the_images_cannot_reach_names_its_key_and_writes_nothing(ray_session, tmp_path, capsys):
    """25 is below the 28 of a 28x28 image's box, but no real digit has that much headroom
    along its noise draw: only building the pool finds out, still before any trial."""
    factors = {"gaussian_l2": {"levels": [2.0, 25.0], "per_class": 5}}
    spec = write(tmp_path, design={"type": "one_factor", "factors": factors})
    out = tmp_path / "o"
    assert main(["run", spec, "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert "design.factors.gaussian_l2.levels[1]" in err and "25" in err
    assert not out.exists() or not any(p.is_file() for p in out.rglob("*"))
