"""Datasets in the Ray object store: built once per content key, as Ray tasks, cached on disk.

Every reference model, pool and suite a plan needs is built by one Ray task whose result
stays in the object store; trials get the ``ObjectRef`` and read the arrays zero-copy.
Reference models are trained first: the FGSM pools and suites built against one take its
``ObjectRef`` as an argument, so Ray orders the tasks. A built dataset is also saved under
its digest in the cache folder (``$ROBUST_RAY_CACHE``, default ``~/.cache/robust_ray/datasets``;
``off`` disables it), so the next sweep over the same levels loads instead of rebuilding.
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

from .spec import SweepSpec, TrainingSpec
from .data import BaseDataset, ImageSet
from .errors import SpecError
from .factors import perturb_pool
from .models import build_model
from .perturb import LevelUnreachable
from .plan import DatasetKey, Plan
from .recipes import RECIPES
from .seeding import seed_everything
from .suites import Suite, build_suite, suite_def
from .train import pick_device

State = dict[str, np.ndarray]  # a reference model's weights, as arrays (zero-copy in the store)


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


def train_reference(key: DatasetKey, base: BaseDataset) -> State:
    """The clean-trained model of ``key``'s architecture and seed (000: FGSM is computed
    against the model trained on the clean set)."""
    p = key.p
    settings = TrainingSpec.model_validate(json.loads(p["training"]))
    seed_everything(p["seed"])
    c, h, w = base.train.images.shape[1:]
    model = build_model(p["arch"], c, base.num_classes, (h, w))
    RECIPES.get("standard")(model, base.train, settings, p["seed"], pick_device(settings.device))
    return {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}


def build(key: DatasetKey, base: BaseDataset, reference: State | None = None, ref_arch: str | None = None):
    p = key.p
    if key.kind == "model":
        return train_reference(key, base)
    model = load_model(reference, ref_arch, base) if reference is not None else None
    options = json.loads(p["options"])
    if key.kind == "pool":
        return perturb_pool(
            base.train, p["perturbation"], p["level"], p["per_class"], p["seed"], base.num_classes, options, model=model
        )
    sdef = suite_def(p["type"])
    return build_suite(sdef, base.test, list(p["levels"]), p["n"], p["seed"], model=model, options=options)


def _save(folder: Path, key: DatasetKey, obj) -> None:
    tmp = folder.with_name(f".{folder.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    if isinstance(obj, Suite):
        obj.save(tmp)
    elif isinstance(obj, ImageSet):
        np.save(tmp / "images.npy", obj.images)
        np.save(tmp / "labels.npy", obj.labels)
    else:
        np.savez(tmp / "state.npz", **obj)
    (tmp / "key.json").write_text(json.dumps({"kind": key.kind, "params": key.p}, default=str))
    try:
        tmp.rename(folder)  # atomic: a reader sees a whole entry or none
    except OSError:  # another process finished first
        shutil.rmtree(tmp, ignore_errors=True)


def _load(folder: Path, kind: str):
    if kind == "suite":
        return Suite.load(folder)
    if kind == "pool":
        return ImageSet(np.load(folder / "images.npy"), np.load(folder / "labels.npy"))
    with np.load(folder / "state.npz") as z:
        return {k: z[k] for k in z.files}


def load_or_build(
    key: DatasetKey, base: BaseDataset, cache: str | None, reference: State | None = None, ref_arch: str | None = None
):
    """The dataset of ``key`` from the cache folder, else built (and saved there);
    returns it and ``{"cached": bool}``."""
    folder = Path(cache) / key.digest if cache else None
    if folder is not None and folder.exists():
        return _load(folder, key.kind), {"cached": True}
    obj = build(key, base, reference, ref_arch)
    if folder is not None:
        _save(folder, key, obj)
    return obj, {"cached": False}


@ray.remote(num_returns=2)
def _build_task(key: DatasetKey, base: BaseDataset, cache: str | None, reference: State | None, ref_arch: str | None):
    return load_or_build(key, base, cache, reference, ref_arch)


def place(plan: Plan, base: BaseDataset, spec: SweepSpec, file: str | None, log=print) -> dict[str, ray.ObjectRef]:
    """Build (or load) every dataset of ``plan`` in Ray tasks; return digest -> ObjectRef.

    ``base`` holds the clean splits. Reference models are trained with the trials' resources
    (a GPU when trials get one); pools and suites that attack one wait for it. Blocks until
    all are built, so a level that cannot be reached is reported, naming its spec key,
    before any trial starts.
    """
    base_ref = ray.put(base)
    cache = str(cache_dir()) if cache_dir() else None
    refs: dict[str, ray.ObjectRef] = {"base": base_ref}
    status: dict[ray.ObjectRef, str] = {}
    # models first, so the keys that reference them find their ObjectRef
    for digest, key in sorted(plan.datasets.items(), key=lambda kv: kv[1].kind != "model"):
        ref_digest = key.p.get("reference")
        task = _build_task
        if key.kind == "model" or ref_digest:  # training or gradients: the trials' resources
            task = _build_task.options(num_cpus=spec.resources.cpu, num_gpus=spec.resources.gpu)
        ref_arch = plan.datasets[ref_digest].p["arch"] if ref_digest else None
        refs[digest], done = task.remote(key, base_ref, cache, refs.get(ref_digest), ref_arch)
        status[done] = digest
    pending, built, cached, t0 = list(status), 0, 0, time.time()
    while pending:
        ready, pending = ray.wait(pending, num_returns=1)
        digest = status[ready[0]]
        try:
            info = ray.get(ready[0])
        except ray.exceptions.RayTaskError as e:
            for other in pending:  # the sweep will not run: stop training reference models for it
                ray.cancel(other, force=True)
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
