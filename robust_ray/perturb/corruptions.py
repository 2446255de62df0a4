"""Common corruptions of Hendrycks & Dietterich (2019), the benchmark of 004 §4.1.

``corruption:<name>`` at severity 1-5 (the level; 0, the identity, means "not applied": a
training factor's default baseline, never a suite level) runs the ``imagecorruptions``
package's own function on each image, so results match the published benchmark code.
That package wants uint8 H x W (x 3) images of at least 32 x 32: smaller images (MNIST)
are zero-padded to 32 x 32, corrupted, and cropped back. It returns RGB; a grayscale
image is read back from channel 0 for the four noises (their channels are independent
draws, so one channel is exactly the grayscale noise) and as luminance (ITU-R 601) for
the rest, whose colour comes only from frost and spatter textures.

Which apply to grayscale: 18 of the 19 (:data:`GRAYSCALE`). ``saturate`` scales HSV
saturation, which is 0 for gray pixels, so severities 1-3 return the image unchanged and
4-5 only tint it; it is registered but left out of the grayscale benchmark.

The package draws from NumPy's global random state; :func:`corrupt` seeds it for the call
and restores it afterwards, so results are deterministic for a seed and the caller's
state is untouched.
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
import os
import sys
import types
import warnings

import numpy as np
import torch

from .base import PERTURBATIONS, Perturbation, Shape

NAMES = (  # imagecorruptions.get_corruption_names("all"), in its order
    "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur",
    "zoom_blur", "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate",
    "jpeg_compression", "speckle_noise", "gaussian_blur", "spatter", "saturate",
)  # fmt: skip
NOISES = ("gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise")
GRAYSCALE = tuple(n for n in NAMES if n != "saturate")
MIN_SIDE = 32


class _Patched(types.ModuleType):
    """A stand-in for a module: the module's attributes, with a few replaced."""

    def __init__(self, module: types.ModuleType, **overrides):
        super().__init__(module.__name__)
        self._module, self.__dict__["_overrides"] = module, overrides

    def __getattr__(self, name):
        return self._overrides[name] if name in self._overrides else getattr(self._module, name)


@functools.cache
def library():
    """``imagecorruptions``, made to run on today's NumPy / scikit-image / setuptools.

    Release 1.1.2 (2020) imports ``pkg_resources`` (gone from setuptools >= 81), uses
    ``np.float_`` (gone in NumPy 2), passes ``multichannel=`` to skimage's gaussian (now
    ``channel_axis``), and lets skimage's s&p noise draw from an unseeded generator. Each
    fix below is applied only when needed, and only inside that package's module: the
    ``pkg_resources`` stand-in is in ``sys.modules`` only while the package is imported
    (it binds ``resource_filename`` at import), so no other code can mistake it for setuptools'.
    """
    shim = None
    if "pkg_resources" not in sys.modules and importlib.util.find_spec("pkg_resources") is None:
        shim = types.ModuleType("pkg_resources")

        def resource_filename(package: str, name: str) -> str:
            origin = importlib.util.find_spec(package).origin
            return os.path.join(os.path.dirname(origin), name)

        shim.resource_filename = resource_filename
        sys.modules["pkg_resources"] = shim
    try:
        import imagecorruptions
        import imagecorruptions.corruptions as impl
    finally:
        if shim is not None and sys.modules.get("pkg_resources") is shim:
            del sys.modules["pkg_resources"]
    import skimage

    if not hasattr(np, "float_"):
        impl.np = _Patched(np, float_=np.float64)
    if "multichannel" not in inspect.signature(skimage.filters.gaussian).parameters:
        gaussian = skimage.filters.gaussian

        def gaussian_compat(image, *args, multichannel=None, **kw):
            if multichannel:
                kw.setdefault("channel_axis", -1)
            return gaussian(image, *args, **kw)

        impl.gaussian = gaussian_compat
    if "rng" in inspect.signature(skimage.util.random_noise).parameters:
        random_noise = skimage.util.random_noise

        def seeded_noise(image, mode="gaussian", rng=None, **kw):
            rng = np.random.randint(2**31) if rng is None else rng  # follow np.random.seed
            return random_noise(image, mode=mode, rng=rng, **kw)

        impl.sk = _Patched(skimage, util=_Patched(skimage.util, random_noise=seeded_noise))
    return imagecorruptions


def corrupt(x: torch.Tensor, name: str, severity: int, seed: int) -> torch.Tensor:
    """``name`` at ``severity`` on every image of ``x`` ([N, C, H, W], C = 1 or 3)."""
    if severity == 0:
        return x.clone()
    lib = library()
    n, c, h, w = x.shape
    ph, pw = max(0, MIN_SIDE - h), max(0, MIN_SIDE - w)
    top, left = ph // 2, pw // 2
    imgs = (x * 255).round_().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    imgs = np.pad(imgs, ((0, 0), (top, ph - top), (left, pw - left), (0, 0)))
    out = np.empty((n, h, w, 3), np.float32)
    state = np.random.get_state()
    np.random.seed(seed % 2**32)
    try:
        with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
            # spatter divides an all-zero alpha plane by its max; that plane is then dropped
            warnings.simplefilter("ignore", RuntimeWarning)
            for i in range(n):
                img = imgs[i, :, :, 0] if c == 1 else imgs[i]
                y = lib.corrupt(img, severity=int(severity), corruption_name=name)
                out[i] = y[top : top + h, left : left + w]
    finally:
        np.random.set_state(state)
    if c == 1:
        gray = out[..., 0] if name in NOISES else out @ np.array([0.299, 0.587, 0.114], np.float32)
        out = gray[..., None]
    return torch.from_numpy(out / 255).permute(0, 3, 1, 2).clamp_(0.0, 1.0).to(x.device, x.dtype).contiguous()


def _limits(level: float, options, shape: Shape | None) -> str | None:
    if shape is not None and shape[0] not in (1, 3):
        return f"common corruptions need 1 or 3 channels, not {shape[0]}"
    return None


for _name in NAMES:
    PERTURBATIONS.register(
        f"corruption:{_name}",
        Perturbation(
            f"corruption:{_name}",
            lambda x, level, seed, _n=_name: corrupt(x, _n, int(level), seed),
            unit="severity, 1-5",
            # 004 has severities 1-5 only; 0 stays the identity, which a training factor
            # may name (not applied, no pool: factors.FactorDef.check_level) and a suite may not
            min_level=1,
            max_level=5,
            integer=True,
            limits=_limits,
            description=f"{_name} of Hendrycks & Dietterich's common corruptions (004 §4.1)",
        ),
    )
