"""Every Ray worker imports the trial and perturbation modules: they must not pull in
torchvision (and torch._dynamo with it), ~1.7 s of CPU and ~170 MiB per process (issue 21
item 2). Checked in a fresh interpreter, since this test process may have imported it."""

import subprocess
import sys

import pytest

PROBE = "import sys, {module}; print(sorted(m for m in ('torchvision', 'torch._dynamo') if m in sys.modules))"


@pytest.mark.parametrize("module", ["robust_ray.trial", "robust_ray.perturb", "robust_ray.models"])
def test_importing_does_not_import_torchvision(module):
    probe = [sys.executable, "-c", PROBE.format(module=module)]
    out = subprocess.run(probe, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", f"{module} imported {out.stdout.strip()}"


def test_rotation_and_cifar_networks_still_work_once_torchvision_is_imported_late():
    code = (
        "import torch; from robust_ray.perturb import PERTURBATIONS; from robust_ray.models import build_model;"
        "y = PERTURBATIONS.get('rotation')(torch.rand(2, 1, 8, 8), 90.0, 0); assert y.shape == (2, 1, 8, 8);"
        "m = build_model('alexnet', 3, 10, (32, 32)); assert m(torch.rand(1, 3, 32, 32)).shape == (1, 10)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("command", ["run", "search"])
def test_run_and_search_speak_before_torch_is_imported(tmp_path, command):
    """Issue 19: the first line of ``run``/``search`` comes before the ~5 s of torch and Ray
    imports, so a user sees at once that the command started."""
    code = (
        "import sys; import robust_ray.cli as c; "
        "c.print = lambda *a, **k: print(*a, '| torch' if 'torch' in sys.modules else '| no torch', **k); "
        f"sys.exit(c.main([{command!r}, {str(tmp_path / 'missing.yaml')!r}]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    first = out.stdout.splitlines()[0]
    assert "checking the spec" in first and first.endswith("| no torch"), out.stdout
    assert out.returncode == 2 and "missing.yaml" in out.stderr
