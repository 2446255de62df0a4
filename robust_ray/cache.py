"""The disk cache of built datasets: every reference model, pool and suite a plan needs, built
once per content key. (:func:`robust_ray.runtime.place` builds them in Ray tasks and keeps
them in the object store; a search's trials build their own pools here.)

A built dataset is saved under its digest in the cache folder (``$ROBUST_RAY_CACHE``,
default ``~/.cache/robust_ray/datasets``; ``off`` disables it), so the next sweep over the
same levels loads instead of rebuilding. Every entry carries ``checksums.json`` (size and
BLAKE2b of each file, written last): an entry that is truncated, emptied or edited fails the
check on load and is rebuilt in place, with the reason in the build's info, rather than
loaded as data or blamed on a spec level. Nothing here imports Ray.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import torch

from .data import BaseDataset
from .keys import DatasetKey, ModelKey
from .models import build_model

State = dict[str, np.ndarray]  # a reference model's weights, as arrays (zero-copy in the store)
CHECKSUMS = "checksums.json"


class CorruptEntry(Exception):
    """A cache entry that does not match its checksums (or has none): rebuilt, not loaded."""


def cache_dir() -> Path | None:
    env = os.environ.get("ROBUST_RAY_CACHE")
    if env == "off":
        return None
    return Path(env) if env else Path.home() / ".cache" / "robust_ray" / "datasets"


def load_model(state: State, arch: str, base: BaseDataset) -> torch.nn.Module:
    c, h, w = base.train.images.shape[1:]
    model = build_model(arch, c, base.num_classes, (h, w))
    model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()})
    return model.eval()


def train_reference(key: ModelKey, base: BaseDataset) -> State:
    """The clean-trained model of ``key``'s architecture and seed (:meth:`ModelKey.build`)."""
    return key.build(base)


def build(key: DatasetKey, base: BaseDataset, reference: State | None = None, ref_arch: str | None = None):
    """The dataset of ``key``; ``reference``: the weights of the model it attacks, if any."""
    model = load_model(reference, ref_arch, base) if reference is not None else None
    return key.build(base, model)


def _save(folder: Path, key: DatasetKey, obj) -> None:
    tmp = folder.with_name(f".{folder.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    key.save(tmp, obj)
    (tmp / "key.json").write_text(json.dumps({"kind": key.kind, "params": key.p}, default=str))
    (tmp / CHECKSUMS).write_text(json.dumps(_checksums(tmp)))
    try:
        tmp.rename(folder)  # atomic: a reader sees a whole entry or none
    except OSError:  # another process finished first
        shutil.rmtree(tmp, ignore_errors=True)


def _digest(path: Path) -> str:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def _checksums(folder: Path) -> dict[str, dict]:
    return {
        f.name: {"size": f.stat().st_size, "blake2b": _digest(f)}
        for f in sorted(folder.iterdir())
        if f.name != CHECKSUMS
    }


def verify(folder: Path) -> None:
    """Raise :class:`CorruptEntry` unless every file of the entry matches its checksum."""
    try:
        expected = json.loads((folder / CHECKSUMS).read_text())
    except (OSError, ValueError) as e:
        raise CorruptEntry(f"no readable {CHECKSUMS} ({type(e).__name__})") from None
    for name, want in expected.items():
        f = folder / name
        if not f.is_file():
            raise CorruptEntry(f"{name} is missing")
        if f.stat().st_size != want["size"]:
            raise CorruptEntry(f"{name} has {f.stat().st_size} bytes, {want['size']} were written")
        if _digest(f) != want["blake2b"]:
            raise CorruptEntry(f"{name} does not match its checksum")


def _discard(folder: Path) -> None:
    """Move a corrupt entry aside first (atomic), so no reader loads it while it is deleted."""
    aside = folder.with_name(f".{folder.name}.corrupt{os.getpid()}")
    try:
        folder.rename(aside)
    except OSError:  # another process discarded it first
        return
    shutil.rmtree(aside, ignore_errors=True)


def load_or_build(
    key: DatasetKey, base: BaseDataset, cache: str | None, reference: State | None = None, ref_arch: str | None = None
):
    """The dataset of ``key`` from the cache folder, else built (and saved there);
    returns it and ``{"cached": bool}``, plus ``"rebuilt": why`` where a cached entry
    failed its checksums and was built again."""
    folder = Path(cache) / key.digest if cache else None
    info: dict = {"cached": False}
    if folder is not None and folder.exists():
        try:
            verify(folder)
            return key.load(folder), {"cached": True}
        except (CorruptEntry, OSError, ValueError, KeyError) as e:  # ValueError: np.load of a damaged file
            info["rebuilt"] = f"cache entry {folder} was damaged ({e}); rebuilt"
            _discard(folder)
    obj = build(key, base, reference, ref_arch)
    if folder is not None:
        _save(folder, key, obj)
    return obj, info
