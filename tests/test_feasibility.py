"""Levels the data cannot reach (class imbalance below the data's own, label errors beyond
the smallest class) are refused with the key, once the data is loaded, before any build."""

import numpy as np
import pytest

from robust_ray.config import parse_spec
from robust_ray.data import BaseDataset, ImageSet
from robust_ray.errors import SpecError
from robust_ray.feasibility import check_levels
from robust_ray.plan import make_plan


def base_with(counts):
    labels = np.repeat(np.arange(len(counts)), counts)
    images = np.zeros((len(labels), 1, 28, 28), np.uint8)
    return BaseDataset("toy", ImageSet(images, labels), ImageSet(images[:10], labels[:10]), len(counts), "")


def spec(factors: dict, design: str = "one_factor"):
    return parse_spec({"name": "f", "architectures": ["lenet5"], "design": {"type": design, "factors": factors}})


MNIST_LIKE = [100, 80, 90, 100, 95, 100, 100, 100, 100, 100]  # CI = 0.2, like clean MNIST


def test_class_imbalance_below_the_data_is_refused_with_its_key():
    s = spec({"class_imbalance": {"levels": [0.2, 0.1, 0.3]}})
    with pytest.raises(SpecError) as e:
        check_levels(s, make_plan(s), base_with(MNIST_LIKE), "x.yaml")
    assert e.value.path == "design.factors.class_imbalance.levels[1]" and "own CI 0.2" in e.value.message


def test_reachable_levels_pass():
    s = spec({"class_imbalance": {"levels": [0.2, 0.3]}, "label_error": {"levels": [0.5]}})
    check_levels(s, make_plan(s), base_with(MNIST_LIKE), None)


def test_label_error_beyond_the_smallest_class_of_the_composed_set():
    # 10 classes, one with 3 samples: LD 0.5 needs 40 wrong labels per class; a grid crossing it
    # with a Gaussian pool of 100 per class makes the smallest class 103, which is enough
    counts = [80] * 9 + [3]
    alone = spec({"label_error": {"levels": [0.5]}})
    with pytest.raises(SpecError) as e:
        check_levels(alone, make_plan(alone), base_with(counts), None)
    assert e.value.path == "design.factors.label_error.levels[0]" and "smallest class has 3" in e.value.message
    crossed = spec({"label_error": {"levels": [0.5]}, "gaussian_l2": {"levels": [1.0], "per_class": 100}}, "grid")
    check_levels(crossed, make_plan(crossed), base_with(counts), None)
