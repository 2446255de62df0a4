"""The benchmark scripts' synthetic inputs still meet the results contract: a benchmark
that crashes measures nothing. Small sizes here; the timings are the scripts' business."""

import importlib.util
from pathlib import Path

import pandas as pd
import pytest

from robust_ray.analysis.report import analyze

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("design", ["grid", "one_factor"])
def test_analysis_speed_frame_is_analysed(tmp_path, design):
    load("analysis_speed").synthetic(tmp_path, 408, design)
    out = analyze(tmp_path, tmp_path / "analysis", plots=False)
    assert (out / "report.md").exists()
    corr = pd.concat(pd.read_csv(p) for p in (out / "tables").glob("*__correlation__*.csv"))
    assert set(corr["suite"]) == {"mnist-test", "mnist-c", "corruptions"}


@pytest.mark.parametrize("n", [8, 24, 64])
@pytest.mark.parametrize("gpu", [0.0, 0.25])
def test_sweep_speed_specs_are_valid_at_every_size_it_is_run_with(n, gpu):
    """Its default (24 trials) and gpu.sh's (64) once asked for label_error >= 1."""
    from robust_ray.config import parse_spec

    module = load("sweep_speed")
    spec = parse_spec(module.spec_of(n, 1, 8, gpu))
    assert len(spec.design.factors["label_error"].levels) == n - 1
    assert spec.resources.gpu == gpu
