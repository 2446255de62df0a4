"""Trained weights kept: ``<folder>/<trial_id>.safetensors`` plus a JSON sidecar.

The weights are the model's ``state_dict`` in the safetensors format (tensors and a JSON
header only: loading runs no code, unlike a pickled ``torch.save``); the sidecar
``<trial_id>.json`` says how to rebuild the module (``arch``, ``shape`` = C, H, W,
``num_classes``: :func:`robust_ray.models.build_model`) and carries the caller's metadata
(recipe, options, seed, levels, spec hash) and the weights' SHA-256. Both go through
:class:`robust_ray.storage.Storage`, so ``s3://`` and other object stores work as a local
folder does. A model loaded back predicts bit for bit as the one saved, on the same device.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import nn

from .models import build_model
from .storage import Storage, _probe_read

FORMAT = "robust_ray.saved_model/1"


def _names(trial_id: str, folder: str) -> tuple[str, str]:
    if not trial_id or "/" in trial_id or trial_id.startswith("."):
        raise ValueError(f"not a usable trial id for a file name: {trial_id!r}")
    prefix = f"{folder.strip('/')}/" if folder.strip("/") else ""
    return f"{prefix}{trial_id}.safetensors", f"{prefix}{trial_id}.json"


def _storage(where: Storage | str) -> Storage:
    return where if isinstance(where, Storage) else Storage(str(where), what="models")


def _read_bytes(storage: Storage, name: str) -> bytes:
    # Storage has read_text only; the same read and the same masked errors, as bytes
    return storage._doing(f"reading {name}", lambda: _probe_read(storage.fs, storage.path(name)), "cannot read it")


def weights_bytes(model: nn.Module) -> bytes:
    """The state_dict as safetensors bytes: CPU, contiguous (channels-last weights too),
    and copied, since safetensors refuses tensors that share memory (tied weights)."""
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    return st_save(tensors, metadata={"format": FORMAT})


def save_model(
    model: nn.Module,
    where: Storage | str,
    trial_id: str,
    *,
    arch: str,
    shape: tuple[int, int, int],
    num_classes: int,
    meta: dict[str, Any] | None = None,
    folder: str = "",
) -> str:
    """Write ``model``'s weights and sidecar under ``where`` (a folder or URI, or a Storage)
    in ``folder``; returns the weights' URI for trials.parquet's ``model_uri``, with any
    credentials it carries masked (a results file is shared; ``robust-ray evaluate`` reads
    the models from the folder it is given). ``meta`` must be JSON-able; it is stored as
    given, under ``"meta"``."""
    storage = _storage(where)
    wname, jname = _names(trial_id, folder)
    data = weights_bytes(model)
    sidecar = {
        "format": FORMAT,
        "trial_id": trial_id,
        "arch": arch,
        "shape": [int(s) for s in shape],
        "num_classes": int(num_classes),
        "weights": wname.rpartition("/")[2],
        "sha256": hashlib.sha256(data).hexdigest(),
        "meta": meta or {},
    }
    text = json.dumps(sidecar, indent=1, sort_keys=True, allow_nan=False)  # fails before any write
    storage.write_bytes(wname, data)
    storage.write_bytes(jname, text.encode())  # last: a sidecar means its weights are complete
    return storage.shown_of(wname)


def read_sidecar(where: Storage | str, trial_id: str, folder: str = "") -> dict:
    storage = _storage(where)
    return json.loads(_read_bytes(storage, _names(trial_id, folder)[1]).decode())


def load_model(
    where: Storage | str, trial_id: str, *, folder: str = "", device: torch.device | str = "cpu"
) -> tuple[nn.Module, dict]:
    """(the model rebuilt from the registry with the saved weights, in eval mode on
    ``device``; its sidecar). Raises ValueError when the weights do not match the sidecar."""
    storage = _storage(where)
    wname, _ = _names(trial_id, folder)
    sidecar = read_sidecar(storage, trial_id, folder)
    data = _read_bytes(storage, wname)
    if hashlib.sha256(data).hexdigest() != sidecar["sha256"]:
        raise ValueError(
            f"{storage.shown_of(wname)}: the weights are not the ones its sidecar describes (SHA-256 differs)"
        )
    c, h, w = sidecar["shape"]
    model = build_model(sidecar["arch"], c, sidecar["num_classes"], (h, w))
    model.load_state_dict(st_load(data), strict=True)
    return model.to(device).eval(), sidecar
