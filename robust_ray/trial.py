"""One trial: compose its training set, train to convergence, evaluate every suite, report.

Plain Python, no Ray: :func:`robust_ray.runtime.sweep_trainable` calls :func:`execute_trial`
inside a Ray Tune trial with ``fetch`` reading the object store zero-copy. The spec
arrives already validated.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import torch

from .config import SweepSpec, TrainingSpec
from .factors import compose
from .models import build_model
from .recipes import RECIPES
from .seeding import seed_everything
from .train import correct_counts, pick_device

Row = tuple[str, str, float, float, int, int | None]  # suite, condition, level, accuracy, n, flipped


def evaluate_suites(model, suites: dict, device, settings) -> list[Row]:
    """Rows (suite, condition, level, accuracy, n, flipped) for every condition of every suite.

    ``flipped``: in a suite that holds its images unchanged as a condition (pixel), how many
    images the model gets right unchanged and wrong under this condition, the count 002 §5's
    w needs (:func:`~robust_ray.suites.pixel_index`; accuracies alone cannot tell a broken
    image from a repaired one); None in other suites.
    """
    rows = []
    amp = settings.amp and device.type == "cuda"
    for name, suite in suites.items():
        right = correct_counts(model, suite.data.images, suite.data.labels, device, settings.eval_batch_size, amp)
        ref = suite.unchanged()
        before = right[torch.as_tensor(ref, device=device)] if ref is not None else None
        for condition, level, idx in suite.groups():
            hit = right[torch.as_tensor(idx, device=device)]
            flipped = int((before & ~hit).sum()) if before is not None and len(idx) == len(ref) else None
            # the exact ratio in float64, not a float32 mean (0.961, not 0.960999995470047)
            rows.append((name, condition, float(level), int(hit.sum()) / hit.numel(), int(hit.numel()), flipped))
    return rows


def evaluate_whitebox(model, spec: SweepSpec, base) -> list[Row]:
    """Rows of the white-box suites (pgd, autoattack): each attacks this trial's own trained
    weights on the clean test split (its stratified ``n``), on the trial's device."""
    from .suites import suite_def

    rows = []
    for name, ss in spec.suites.items():
        kind = suite_def(spec.suite_type(name)).whitebox
        if kind is None:
            continue
        from .whitebox import run_whitebox

        for r in run_whitebox(model, kind, ss.options, base.test.images, base.test.labels):
            rows.append((name, r["condition"], r["level"], r["n_correct"] / r["n"], int(r["n"]), None))
    return rows


def summarize(rows: list[Row]) -> dict[str, float]:
    """acc_<suite>: the suite's accuracy over all its images (= mean over equal-size conditions),
    the exact ratio of the summed counts (each row's accuracy is a count over its n)."""
    out: dict[str, list[int]] = {}
    for name, _, _, acc, n, *_ in rows:
        out.setdefault(name, [0, 0])
        out[name][0] += round(acc * n)
        out[name][1] += n
    return {f"acc_{k}": v[0] / v[1] for k, v in out.items()}


def execute_trial(
    trial: dict,
    spec: SweepSpec,
    fetch: Callable[[str], Any],
    report: Callable[[dict], None],
    settings: TrainingSpec | None = None,
    pools: dict | None = None,
    t0: float | None = None,
    save: Callable[[torch.nn.Module, dict], str] | None = None,
) -> dict:
    """Compose, train, evaluate one planned trial (a :class:`~robust_ray.plan.TrialPlan`
    dict): the part of a trial that ``run`` and ``search`` share. ``fetch(key)`` returns a
    dataset ("base" or a digest); ``report`` receives the per-epoch metrics. ``settings``
    (default: the spec's) may vary training settings (``search``); ``pools`` default to
    fetching the trial's pool digests. Returns the final metrics."""
    t0 = time.time() if t0 is None else t0
    settings = settings or spec.training
    torch.set_num_threads(max(1, int(spec.resources.cpu)))
    device = pick_device(settings.device)
    base, train, achieved, model = _prepare(trial, fetch, pools)
    # the trial's recipe and options replace the spec's training.recipe(_options)
    settings = settings.model_copy(update={"recipe_options": {}})
    fitted = RECIPES.get(trial["recipe"])(
        model,
        train,
        settings,
        int(trial["seed"]),
        device,
        lambda m: report({**m, "done": False}),
        **trial["recipe_options"],
    )
    return _outcome(trial, spec, fetch, base, model, fitted, train, achieved, device, save, t0)


def execute_fused(
    trials: list[dict],
    spec: SweepSpec,
    fetch: Callable[[str], Any],
    save_for: Callable[[dict], Callable[[torch.nn.Module, dict], str] | None] = lambda trial: None,
) -> dict[str, dict]:
    """Planned trials of one architecture and the standard recipe, trained as one
    (:func:`robust_ray.fused.fit_fused`): each composed, initialised and evaluated exactly as
    :func:`execute_trial` would; returns trial id -> its final metrics. ``wall_s`` is the
    group's: the trials trained together."""
    from .fused import fit_fused

    t0 = time.time()
    settings = spec.training
    torch.set_num_threads(max(1, int(spec.resources.cpu)))
    device = pick_device(settings.device)
    prepared = [_prepare(t, fetch) for t in trials]
    fits = fit_fused(
        [p[3] for p in prepared], [p[1] for p in prepared], settings, [int(t["seed"]) for t in trials], device
    )
    return {
        t["trial_id"]: _outcome(t, spec, fetch, base, model, fitted, train, achieved, device, save_for(t), t0)
        for t, (base, train, achieved, model), fitted in zip(trials, prepared, fits)
    }


def _prepare(trial: dict, fetch: Callable[[str], Any], pools: dict | None = None):
    """The trial's clean data, composed training set, achieved levels and initial model
    (seeded from the trial's seed, as every trial's)."""
    seed = int(trial["seed"])
    seed_everything(seed)
    base = fetch("base")
    pools = {f: fetch(d) for f, d in trial["pools"].items()} if pools is None else pools
    train, achieved = compose(base.train, trial["levels"], pools, seed, base.num_classes)
    c, h, w = base.train.images.shape[1:]
    model = build_model(trial["arch"], c, base.num_classes, (h, w))
    return base, train, achieved, model


def _provenance(trial: dict, spec) -> dict:
    """What made the kept model, for its sidecar: the trial's key (:func:`plan.trial_key`,
    equal keys mean one model), the sweep spec's digest, and the settings it was trained with."""
    import hashlib

    whole = spec.model_dump(mode="json")
    return {"recipe": trial["recipe"], "recipe_options": trial["recipe_options"], "seed": int(trial["seed"]),
            "levels": trial["levels"], "sweep": spec.name, "trial_key": trial.get("key") or None,
            "spec_sha256": hashlib.sha256(json.dumps(whole, sort_keys=True).encode()).hexdigest(),
            "dataset": whole["dataset"], "training": whole["training"],
            "factors": {f: whole["design"]["factors"][f] for f in trial["levels"] if f in whole["design"]["factors"]}}  # fmt: skip


def _outcome(trial, spec, fetch, base, model, fitted, train, achieved, device, save, t0) -> dict:
    """Evaluate the fitted model on every suite, keep its weights, and the final metrics."""
    rows = []
    if fitted.has_weights:  # a run that diverged in its first epoch has no weights worth testing
        suites = {name: fetch(d) for name, d in trial["suites"].items()}
        rows = evaluate_suites(model, suites, device, spec.training)
        rows += evaluate_whitebox(model, spec, base)
    model_uri = None
    if save is not None and fitted.has_weights:  # the kept weights: what evaluate loads later
        model_uri = save(model, _provenance(trial, spec))
    return {
        "status": fitted.status,
        "train_acc": fitted.train_acc,
        "val_acc": fitted.val_acc,
        "epochs": fitted.epochs,
        # a diverged trial's last loss (non-finite) and the epoch whose weights it kept (0: none)
        "train_loss": fitted.train_loss,
        "best_epoch": fitted.best_epoch,
        "n_train": len(train),
        "wall_s": time.time() - t0,
        "started_at": t0,
        "achieved_json": json.dumps(achieved),
        "metrics_json": json.dumps(rows),
        "history_json": json.dumps(fitted.history),  # one dict per epoch: history.parquet
        **summarize(rows),
        "model_uri": model_uri,
        "done": True,
    }
