"""Can every planned training set be composed from this data? Checked on labels alone,
after the data is loaded and before any dataset is built or any trial starts."""

from __future__ import annotations

import numpy as np

from .data import BaseDataset, ImageSet
from .errors import SpecError
from .factors import compose
from .plan import Plan, level_path
from .spec import SweepSpec


def check_levels(spec: SweepSpec, plan: Plan, base: BaseDataset, file: str | None) -> None:
    """Compose each distinct training set with image-less stand-ins of the same labels
    (class imbalance and label error depend on class counts the spec cannot know)."""
    labels_only = ImageSet(np.zeros((len(base.train), 0), np.uint8), base.train.labels)
    seen = set()
    for t in plan.trials:
        sig = (t.seed, tuple(sorted(t.levels.items(), key=lambda kv: kv[0])))
        if sig in seen:
            continue
        seen.add(sig)
        pools = {f: _pool_labels(spec, f, base) for f in t.pools}
        try:
            compose(labels_only, t.levels, pools, t.seed, base.num_classes)
        except ValueError as e:
            # the sample stage runs first: if it alone fails, class imbalance is to blame
            try:
                compose(labels_only, {**t.levels, "label_error": None}, pools, t.seed, base.num_classes)
                culprit = "label_error"
            except ValueError:
                culprit = "class_imbalance"
            raise SpecError(file, level_path(spec, culprit, t.levels[culprit]), f"{e} ({spec.dataset.name})") from None


def _pool_labels(spec: SweepSpec, factor: str, base: BaseDataset) -> ImageSet:
    per_class = spec.design.factors[factor].options.per_class
    labels = np.repeat(np.arange(base.num_classes), per_class)
    return ImageSet(np.zeros((len(labels), 0), np.uint8), labels)
