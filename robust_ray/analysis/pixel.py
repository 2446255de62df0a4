"""The Pixel-index of 002 §5 (eq. 7): Pi = w / (p * r * a).

- w: the share of images recognised wrongly after the pixel change. 002 starts from
  images every model classifies correctly, so w is the share that turns wrong; here
  ``w="error"`` takes 1 - accuracy at the level, and ``w="drop"`` the accuracy lost
  against the same model on a reference (clean) suite, max(0, A_clean - A_level), the
  closer match when not every test image starts correct;
- p: the proportion of modified pixels, level / image_pixels when the suite's level is a
  pixel count (``level_unit="pixels"``), or the level itself (``"fraction"``);
- r: the modified value range as a fraction of the full range (002 eq. 10: 255/255 = 1);
- a: the modified position area as a fraction of the image (002 eq. 11).

002's worked example (eqs. 8-12): w = 10 %, p = 64/224², r = 1, a = 200²/224² gives
Pi = 98.30. A smaller Pi means a more robust model. Level 0 (p = 0) has no Pi.
"""

from __future__ import annotations

import numpy as np


def pixel_index(w, p, r: float = 1.0, a: float = 1.0) -> np.ndarray:
    """Pi = w / (p * r * a), elementwise; NaN where p * r * a is not positive."""
    w, p = np.asarray(w, float), np.asarray(p, float)
    den = p * float(r) * float(a)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, w / den, np.nan)
