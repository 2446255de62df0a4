"""Mean accuracy and coefficient of variation, and the four-quadrant mCV plot (003).

For each model (trial) the test sets are the (suite, level) pairs it was evaluated on, the
way 003 tests every classifier on its 69 test sets:

- mean accuracy MA = the mean of the per-test-set accuracies (003 eq. 5; the paper prints
  a divisor n-1 there, which contradicts its own "average"; we use n);
- CV% = 100 * sigma / mu with sigma the population standard deviation (003 eqs. 3, 4, 6);
- Algorithm 1 places a model against a reference point (rMA, rCV): Group I MA >= rMA and
  CV <= rCV; II MA >= rMA and CV > rCV; III MA < rMA and CV <= rCV; IV MA < rMA and
  CV > rCV. The reference defaults to the mean (MA, CV) of the clean-trained models
  (003 §4A averages the clean AlexNet, ResNet50 and VGG19).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .groups import by_trial

GROUPS = np.array(["I", "II", "III", "IV"])


def mean_cv(metrics: pd.DataFrame) -> pd.DataFrame:
    """Per model (``tidx``): MA (fraction), CV (%) and the number of test sets, from
    ``metrics`` rows (one per model x suite x level); two passes (mean, then squared
    deviations) so a near-constant model keeps an exact CV."""
    trials, local, count = by_trial(metrics)
    acc = metrics["accuracy"].to_numpy(float)
    mean = np.bincount(local, weights=acc, minlength=len(trials)) / count
    var = np.bincount(local, weights=(acc - mean[local]) ** 2, minlength=len(trials)) / count
    with np.errstate(divide="ignore", invalid="ignore"):
        cv = 100.0 * np.sqrt(var) / mean
    return pd.DataFrame({"tidx": trials, "MA": mean, "CV": cv, "test_sets": count})


def quadrant(ma, cv, ref_ma: float, ref_cv: float) -> np.ndarray:
    """003 Algorithm 1, vectorised: "I" | "II" | "III" | "IV" per model."""
    ma, cv = np.asarray(ma, float), np.asarray(cv, float)
    high, steady = ma >= ref_ma, cv <= ref_cv
    idx = np.where(high, np.where(steady, 0, 1), np.where(steady, 2, 3))
    out = GROUPS[idx].astype(object)
    out[~(np.isfinite(ma) & np.isfinite(cv))] = "undefined"
    return out
