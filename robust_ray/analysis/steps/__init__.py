"""The analysis steps, one module per seed paper (000 split into its single- and
multi-factor analyses); importing this package registers every step in
:data:`robust_ray.analysis.registry.STEPS`."""

from . import learning, p000_multi, p000_single, p001_overlap, p002_pixel, p003_mcv, p004_corruption  # noqa: F401
