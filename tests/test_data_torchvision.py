"""fashion-mnist and cifar10 load through the real torchvision readers, from tiny files
written in the datasets' real on-disk formats (IDX; CIFAR's pickled batches). No network."""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

from robust_ray import data
from robust_ray.errors import DataError


def write_idx(path: Path, array: np.ndarray) -> None:
    """IDX (LeCun's MNIST format): magic 0x0000 08 <ndim>, big-endian int32 dims, uint8 data."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + np.ascontiguousarray(array, np.uint8).tobytes())


def fake_idx_dataset(root: Path, folder: str, n_train: int, n_test: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    out = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        write_idx(root / folder / "raw" / f"{split}-images-idx3-ubyte", images)
        write_idx(root / folder / "raw" / f"{split}-labels-idx1-ubyte", labels)
        out[split] = (images, labels)
    return out


def test_fashion_mnist_reads_idx_files(tmp_path):
    written = fake_idx_dataset(tmp_path, "FashionMNIST", 30, 12)
    ds = data.load("fashion-mnist", tmp_path, download=False)
    assert ds.name == "fashion-mnist" and ds.num_classes == 10
    for split, got in (("train", ds.train), ("t10k", ds.test)):
        images, labels = written[split]
        assert got.images.dtype == np.uint8 and got.images.shape == (len(labels), 1, 28, 28)
        np.testing.assert_array_equal(got.images[:, 0], images)
        np.testing.assert_array_equal(got.labels, labels.astype(np.int64))
    info = data.DATASETS.get("fashion-mnist")
    assert info.shape == ds.train.images.shape[1:] and (info.n_train, info.n_test) == (60000, 10000)


def write_cifar(root: Path, per_batch: int, seed: int = 0) -> dict[str, tuple[np.ndarray, list[int]]]:
    """cifar-10-batches-py: pickled dicts, 'data' uint8 [n, 3072] as R plane, G plane, B plane."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        flat = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, per_batch)]
        with open(folder / name, "wb") as f:
            pickle.dump({"batch_label": name, "data": flat, "labels": labels}, f)
        batches[name] = (flat, labels)
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": names, "num_cases_per_batch": per_batch, "num_vis": 3072}, f)
    return batches


def test_cifar10_reads_pickled_batches(tmp_path, monkeypatch):
    import torchvision.datasets.cifar as tv_cifar

    # torchvision checks the MD5 of the real files; ours are tiny fakes in the same format
    monkeypatch.setattr(tv_cifar, "check_integrity", lambda fpath, md5=None: Path(fpath).is_file())
    batches = write_cifar(tmp_path, per_batch=4)
    ds = data.load("cifar10", tmp_path, download=False)
    assert ds.train.images.shape == (20, 3, 32, 32) and ds.test.images.shape == (4, 3, 32, 32)
    assert ds.train.images.dtype == np.uint8 and ds.train.labels.dtype == np.int64

    train_flat = np.concatenate([batches[f"data_batch_{i}"][0] for i in range(1, 6)])
    train_labels = sum((batches[f"data_batch_{i}"][1] for i in range(1, 6)), [])
    np.testing.assert_array_equal(ds.train.images.reshape(20, -1), train_flat)  # CHW = file order
    np.testing.assert_array_equal(ds.train.labels, train_labels)
    # a pixel's three channels come from the three colour planes of the file
    r, g, b = (batches["test_batch"][0][1, plane * 1024 + 5 * 32 + 7] for plane in range(3))
    assert tuple(ds.test.images[1, :, 5, 7]) == (r, g, b)
    assert data.DATASETS.get("cifar10").shape == (3, 32, 32)


@pytest.mark.parametrize("name, folder", [("fashion-mnist", "FashionMNIST/raw"), ("cifar10", "cifar-10-batches-py")])
def test_missing_data_names_the_root_and_how_to_get_it(tmp_path, name, folder):
    with pytest.raises(DataError) as e:
        data.load(name, tmp_path / "nowhere", download=False)
    msg = str(e.value)
    assert str(tmp_path / "nowhere" / folder) in msg
    assert "download disabled" in msg and "download=True" in msg and "ROBUST_RAY_DATA" in msg


def test_partial_download_is_reported_not_loaded(tmp_path):
    fake_idx_dataset(tmp_path, "FashionMNIST", 5, 5)
    (tmp_path / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match="fashion-mnist: no data under"):
        data.load("fashion-mnist", tmp_path, download=False)
