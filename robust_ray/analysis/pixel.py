"""The Pixel-index of 002 §5 (eq. 7): Pi = w / (p * r * a).

- w: the share of images recognised wrongly after the pixel change. 002 starts from images
  every model classifies correctly (§6.1.1; Table 4, eq. 8), so w is the share of those
  that turns wrong. ``flipped`` (the default where the metrics have it: the pixel suite
  records, per model and condition, the images right unchanged and wrong changed) is that
  count over the images right unchanged, as ``robust_ray.suites.pixel_index``. From
  accuracies alone: ``relative`` w = max(0, A_clean - A) / A_clean (equal to it only when a
  change never repairs a wrong image); ``drop`` w = max(0, A_clean - A); ``error``
  w = 1 - A (all errors, also those on clean images);
- p: the proportion of modified pixels, n / (h w) (002 eq. 9);
- r: the modified value range as a fraction of the full range (002 eq. 10: 255/255 = 1);
- a: the modified position area as a fraction of the image (002 eq. 11).

p, r and a of each condition of the ``pixel`` suite come from ``suites.json`` (002 §6.1's
count, value-range and area experiments). 002's worked example (eqs. 8-12): w = 10 %,
p = 64/224², r = 1, a = 200²/224² gives Pi = 98.34 (002 prints 98.30). A smaller Pi means a more robust
model. Level 0 (p = 0) has no Pi.
"""

from __future__ import annotations

import numpy as np

W_MODES = ("flipped", "relative", "drop", "error")


def pixel_index(w, p, r=1.0, a=1.0) -> np.ndarray:
    """Pi = w / (p * r * a), elementwise; NaN where p * r * a is not positive."""
    w, p, r, a = (np.asarray(v, float) for v in (w, p, r, a))
    den = p * r * a
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, w / den, np.nan)


def flipped_share(flipped, right_unchanged) -> np.ndarray:
    """w of 002 eq. 7 from counts: images turned wrong over images right unchanged."""
    f, r = np.asarray(flipped, float), np.asarray(right_unchanged, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(r > 0, f / r, np.nan)


def wrong_share(accuracy, clean_accuracy=None, mode: str = "relative") -> np.ndarray:
    """w of 002 eq. 7 from accuracies (see the module doc for the modes)."""
    acc = np.asarray(accuracy, float)
    if mode == "error":
        return 1.0 - acc
    clean = np.asarray(clean_accuracy, float)
    drop = np.clip(clean - acc, 0.0, None)
    if mode == "drop":
        return drop
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(clean > 0, drop / clean, np.nan)
