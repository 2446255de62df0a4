"""Seeds derived from names, so every random choice in a sweep is reproducible and
independent of the order in which Ray happens to run things."""

from __future__ import annotations

import hashlib
import json
import random

import numpy as np
import torch


def derive_seed(*parts: object) -> int:
    """A 63-bit seed from any JSON-able parts: derive_seed(7, "gaussian_l2") is stable
    across processes, machines and Python versions (unlike hash())."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return int.from_bytes(hashlib.blake2b(blob, digest_size=8).digest(), "little") >> 1


def seed_everything(seed: int) -> None:
    """Fix Python, NumPy and torch seeds (000 §2.1: fixed seeds for reproducibility)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
