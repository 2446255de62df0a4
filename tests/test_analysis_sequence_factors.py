"""003's two-factor training sets in a one_factor sweep: a sequence factor (sp>gaussian)
has no "off" level, so its column is NaN where the plan left it out; those rows, not its
most common level, are its baseline, and each training set keeps its own name."""

from __future__ import annotations

import numpy as np
import pandas as pd

from robust_ray.analysis.context import training_labels
from robust_ray.analysis.load import make_design


def test_sequence_factor_rows_are_not_taken_for_the_clean_training_set(tmp_path):
    nan = np.nan
    trials = pd.DataFrame({
        "trial_id": [f"t{i}" for i in range(5)], "sweep": "s", "arch": "lenet5", "recipe": "standard", "seed": 0,
        "status": "ok", "salt_pepper": [0.0, 0.1, 0.0, 0.0, 0.0], "sp>gaussian": [nan, nan, 0.1, nan, nan],
        "sp>rotation": [nan, nan, nan, -30.0, 30.0], "acc_clean": 0.9,
    })  # fmt: skip
    spec = {"design": {"type": "one_factor", "factors": {
        "salt_pepper": {"levels": [0.1]}, "sp>gaussian": {"levels": [0.1], "first": 0.1},
        "sp>rotation": {"levels": [-30, 30], "first": 0.1}}}}  # fmt: skip
    d = make_design("s", tmp_path, spec, trials, [])
    labels = training_labels(trials, d).tolist()
    assert labels == ["clean", "SP0.1", "SP0.1GA0.1", "SP0.1RL30", "SP0.1RR30"]
    assert d.clean(trials).tolist() == [True, False, False, False, False]
