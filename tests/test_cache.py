"""The disk cache of built datasets: a second sweep over the same datasets loads them, and a
key changes whenever what the dataset is, or the code that builds it, changes."""

import numpy as np

from robust_ray import keys as keys_module
from robust_ray.cache import load_or_build
from robust_ray.config import parse_spec
from robust_ray.plan import make_plan


def spec(per_class: int = 3):
    return parse_spec({
        "name": "cache", "architectures": ["lenet5"],
        "design": {"factors": {"gaussian_l2": {"levels": [2.0], "per_class": per_class}}},
        "suites": {"mnist-c": {"levels": [1.0, 3.0], "n": 50}},
    })  # fmt: skip


def keys(s):
    return {k.kind: k for k in make_plan(s).datasets.values()}


def test_a_second_build_loads_the_same_arrays_from_the_cache(tmp_path, mnist5k):
    for key in keys(spec()).values():
        first, info = load_or_build(key, mnist5k, str(tmp_path))
        assert info == {"cached": False} and (tmp_path / key.digest).is_dir()
        again, info = load_or_build(key, mnist5k, str(tmp_path))
        assert info == {"cached": True}
        if key.kind == "suite":
            np.testing.assert_array_equal(again.levels, first.levels)
            first, again = first.data, again.data
        np.testing.assert_array_equal(again.images, first.images)
        np.testing.assert_array_equal(again.labels, first.labels)


def test_the_key_follows_the_dataset_and_the_code(monkeypatch):
    before = {kind: k.digest for kind, k in keys(spec()).items()}
    assert before == {kind: k.digest for kind, k in keys(spec()).items()}  # stable
    assert keys(spec(per_class=4))["pool"].digest != before["pool"]
    assert keys(spec(per_class=4))["suite"].digest == before["suite"]  # the suite did not change
    monkeypatch.setattr(keys_module, "code_digest", lambda: "another version of the code")
    assert all(k.digest != before[kind] for kind, k in keys(spec()).items())


def suite_with(**options):
    return parse_spec({
        "name": "cache", "architectures": ["lenet5"],
        "design": {"factors": {"gaussian_l2": {"levels": [2.0]}}},
        "suites": {"pixels": {"type": "few_pixel", "levels": [1.0, 3.0], "n": 50, **options}},
    })  # fmt: skip


def test_a_suite_written_with_or_without_its_default_options_is_one_dataset():
    bare, written = keys(suite_with())["suite"], keys(suite_with(value_range=1.0, side=1.0))["suite"]
    assert bare.digest == written.digest
    assert keys(suite_with(value_range=0.5))["suite"].digest != bare.digest  # an option that differs is another


def _pool_key():
    return keys(spec())["pool"]


def test_a_truncated_entry_is_rebuilt_not_loaded(tmp_path, mnist5k):
    key = _pool_key()
    first, _ = load_or_build(key, mnist5k, str(tmp_path))
    images = tmp_path / key.digest / "images.npy"
    images.write_bytes(images.read_bytes()[: images.stat().st_size // 2])  # a disk that filled up
    again, info = load_or_build(key, mnist5k, str(tmp_path))
    assert info["cached"] is False and "images.npy" in info["rebuilt"]
    np.testing.assert_array_equal(again.images, first.images)
    third, info = load_or_build(key, mnist5k, str(tmp_path))  # the rebuilt entry is whole again
    assert info == {"cached": True}
    np.testing.assert_array_equal(third.images, first.images)


def test_an_edited_entry_of_the_same_size_fails_its_checksum(tmp_path, mnist5k):
    key = _pool_key()
    first, _ = load_or_build(key, mnist5k, str(tmp_path))
    labels = tmp_path / key.digest / "labels.npy"
    raw = bytearray(labels.read_bytes())
    raw[-1] ^= 0xFF
    labels.write_bytes(bytes(raw))
    again, info = load_or_build(key, mnist5k, str(tmp_path))
    assert "labels.npy does not match its checksum" in info["rebuilt"]
    np.testing.assert_array_equal(again.labels, first.labels)


def test_an_empty_entry_folder_is_rebuilt(tmp_path, mnist5k):
    key = keys(spec())["suite"]
    (tmp_path / key.digest).mkdir()
    suite, info = load_or_build(key, mnist5k, str(tmp_path))
    assert "checksums.json" in info["rebuilt"] and len(suite.data.labels) == 100
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # nothing left aside
