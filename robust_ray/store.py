"""Datasets in the Ray object store: built once per content key, as Ray tasks, cached on disk.

Every pool and suite a plan needs is built by one Ray task whose result stays in the
object store; trials get the ``ObjectRef`` and read the arrays zero-copy. A built dataset
is also saved under its digest in the cache folder (``$ROBUST_RAY_CACHE``, default
``~/.cache/robust_ray/datasets``; ``off`` disables it), so the next sweep over the same
levels loads instead of rebuilding.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import ray
import torch

from .data import BaseDataset, ImageSet, to_float
from .errors import SpecError
from .factors import pick_sources
from .perturb import PERTURBATIONS, LevelUnreachable
from .plan import DatasetKey, Plan
from .seeding import derive_seed
from .suites import Suite, build_suite, suite_def


def cache_dir() -> Path | None:
    env = os.environ.get("ROBUST_RAY_CACHE")
    if env == "off":
        return None
    return Path(env) if env else Path.home() / ".cache" / "robust_ray" / "datasets"


def build_pool(key: DatasetKey, train: ImageSet, num_classes: int, chunk: int = 4096) -> ImageSet:
    """``per_class`` clean training images per class, perturbed at ``level`` (000 §2.2.1)."""
    p = key.p
    src = pick_sources(train.labels, p["per_class"], p["seed"], num_classes)
    fn = PERTURBATIONS.get(p["perturbation"]).fn
    out = np.empty((len(src), *train.images.shape[1:]), np.float16)
    for s in range(0, len(src), chunk):
        x = to_float(train.images[src[s : s + chunk]])
        with torch.no_grad():
            out[s : s + len(x)] = fn(x, p["level"], derive_seed(p["seed"], s)).numpy()
    return ImageSet(out, train.labels[src])


def build(key: DatasetKey, base: BaseDataset) -> ImageSet | Suite:
    if key.kind == "pool":
        return build_pool(key, base.train, base.num_classes)
    p = key.p
    return build_suite(suite_def(p["type"]), base.test, list(p["levels"]), p["n"], p["seed"])


def _save(folder: Path, key: DatasetKey, obj: ImageSet | Suite) -> None:
    tmp = folder.with_name(f".{folder.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    data = obj.data if isinstance(obj, Suite) else obj
    np.save(tmp / "images.npy", data.images)
    np.save(tmp / "labels.npy", data.labels)
    if isinstance(obj, Suite):
        np.save(tmp / "levels.npy", obj.levels)
    (tmp / "key.json").write_text(json.dumps({"kind": key.kind, "params": key.p}, default=str))
    try:
        tmp.rename(folder)  # atomic: a reader sees a whole entry or none
    except OSError:  # another process finished first
        shutil.rmtree(tmp, ignore_errors=True)


def _load(folder: Path) -> ImageSet | Suite:
    data = ImageSet(np.load(folder / "images.npy"), np.load(folder / "labels.npy"))
    levels = folder / "levels.npy"
    return Suite(data, np.load(levels)) if levels.exists() else data


@ray.remote(num_returns=2)
def _build_task(key: DatasetKey, base: BaseDataset, cache: str | None):
    folder = Path(cache) / key.digest if cache else None
    if folder is not None and folder.exists():
        return _load(folder), {"cached": True}
    obj = build(key, base)
    if folder is not None:
        _save(folder, key, obj)
    return obj, {"cached": False}


def place(plan: Plan, base: BaseDataset, file: str | None, log=print) -> dict[str, ray.ObjectRef]:
    """Build (or load) every dataset of ``plan`` in Ray tasks; return digest -> ObjectRef.

    ``base-train``/``base-test`` hold the clean splits. Blocks until all are built, so a
    level that cannot be reached is reported, naming its spec key, before any trial starts.
    """
    base_ref = ray.put(base)
    cache = cache_dir()
    refs: dict[str, ray.ObjectRef] = {"base": base_ref}
    status: dict[ray.ObjectRef, str] = {}
    for digest, key in plan.datasets.items():
        refs[digest], done = _build_task.remote(key, base_ref, str(cache) if cache else None)
        status[done] = digest
    pending, built, cached, t0 = list(status), 0, 0, time.time()
    while pending:
        ready, pending = ray.wait(pending, num_returns=1)
        digest = status[ready[0]]
        try:
            info = ray.get(ready[0])
        except ray.exceptions.RayTaskError as e:
            cause = e.cause if isinstance(e.cause, Exception) else e
            if isinstance(cause, (LevelUnreachable, ValueError)):
                raise SpecError(file, plan.where[digest], str(cause)) from None
            raise
        built += 1
        cached += info["cached"]
        log(f"datasets: {built}/{len(status)} ready ({cached} from cache) {time.time() - t0:.0f}s")
    # A second copy on the driver's node: if the node that built a dataset dies, Ray promotes
    # this copy instead of re-running the build, which could deadlock on a cluster whose CPUs
    # are all held by trial actors waiting for that very dataset.
    data_refs = [refs[d] for d in plan.datasets]
    if data_refs:
        ray.wait(data_refs, num_returns=len(data_refs), fetch_local=True)
    return refs
