"""Example Ray cluster configs shipped with robust_ray (the AWS one is ``cluster.yaml`` at
the repository's top)."""

from pathlib import Path

ONPREM = Path(__file__).with_name("onprem.yaml")
