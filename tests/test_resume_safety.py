"""``--resume`` unpickles Tune's state: a results folder someone else can write is refused
before anything is unpickled (issue 14), so a planted pickle never runs."""

from __future__ import annotations

import os
import pickle

import pytest

from robust_ray.cli import main

SPEC = """
name: planted
dataset: {name: mnist-5k}
architectures: [lenet5]
design: {type: one_factor, factors: {label_error: {levels: [0.1]}}}
suites: {mnist-test: {n: 100}}
"""


class Planted:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))  # unpickling creates the marker file


def planted_folder(tmp_path):
    spec, out = tmp_path / "spec.yaml", tmp_path / "out"
    spec.write_text(SPEC)
    (out / "tune").mkdir(parents=True)
    os.chmod(out, 0o755)
    os.chmod(out / "tune", 0o755)
    pkl = out / "tune" / "tuner.pkl"
    pkl.write_bytes(pickle.dumps(Planted(str(tmp_path / "ran"))))
    os.chmod(pkl, 0o644)
    return spec, out, pkl


@pytest.mark.parametrize("how", ["world-writable", "group-writable folder", "another owner"])
def test_a_folder_others_can_write_is_refused_before_unpickling(tmp_path, capsys, how):
    spec, out, pkl = planted_folder(tmp_path)
    if how == "world-writable":
        os.chmod(pkl, 0o666)
    elif how == "group-writable folder":
        os.chmod(out / "tune", 0o775)
    else:
        if os.geteuid() != 0:
            pytest.skip("changing a file's owner needs root")
        os.chown(pkl, 12345, -1)
    assert main(["run", str(spec), "--output", str(out), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "runs any code planted in it" in err and ("writable by others" in err or "another user" in err), err
    assert not (tmp_path / "ran").exists()


def test_a_folder_of_ones_own_is_not_refused_for_its_permissions(tmp_path, capsys):
    from robust_ray.runtime import check_not_planted

    _, out, _ = planted_folder(tmp_path)
    check_not_planted(str(out), str(out / "tune"))  # no error: ours, and no one else writes it
