"""The common corruptions keep their fixes to the ``imagecorruptions`` package: using them
leaves the rest of the process as it was."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# a fresh interpreter: the package is imported once per process, so only a new one shows
# what importing and using it leaves behind
SCRIPT = """
import sys
before = sys.modules.get("pkg_resources")
import torch
from robust_ray.perturb import PERTURBATIONS
x = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(0))
y = PERTURBATIONS.get("corruption:frost")(x, 3, 0)  # frost reads its textures via resource_filename
assert not torch.equal(x, y)
after = sys.modules.get("pkg_resources")
# what it was before, or setuptools' own where that is installed: never our stand-in
assert after is before or getattr(after, "__file__", None), f"pkg_resources left as {after!r}"
print("ok")
"""


def test_using_corruptions_leaves_pkg_resources_as_it_was():
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=300, check=False
    )
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr[-2000:]
