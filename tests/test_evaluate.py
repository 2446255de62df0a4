"""robust_ray.evaluate: any suite on a plain nn.Module, without Ray, as a DataFrame."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from attack_models import trained_lenet5
from torch import nn

import robust_ray
from robust_ray.train import accuracy

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def lenet():
    return trained_lenet5()


def test_evaluate_scores_clean_and_white_box_suites(lenet):
    model, test = lenet
    df = robust_ray.evaluate(
        model, {"clean": {}, "pgd": {"eps": [0.1, 0.3], "n": 100}}, data=(test.images, test.labels)
    )
    assert list(df.columns) == ["suite", "condition", "level", "n", "n_correct", "accuracy"]
    assert df["accuracy"].dtype == "float64" and (df["accuracy"] == df["n_correct"] / df["n"]).all()
    clean = df[df.suite == "clean"].iloc[0]
    assert clean.n == len(test) and clean.accuracy == pytest.approx(
        accuracy(model, test.images, test.labels, torch.device("cpu"))
    )
    pgd = df[df.suite == "pgd"].set_index("condition")
    assert list(pgd.index) == ["eps=0.1", "eps=0.3"] and list(pgd.level) == [0.1, 0.3]
    assert (pgd.n == 100).all()  # a stratified 100: ten of each digit
    assert pgd.accuracy["eps=0.3"] <= pgd.accuracy["eps=0.1"] <= clean.accuracy


def test_evaluate_runs_a_plain_module_without_ray():
    """In a fresh Python: `import robust_ray` is light, and evaluate never imports Ray."""
    script = textwrap.dedent(
        """
        import sys
        import robust_ray
        assert "torch" not in sys.modules and "pandas" not in sys.modules, "import robust_ray is not light"
        import torch
        from torch import nn
        torch.manual_seed(0)
        model = nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 10))
        images = torch.randint(0, 256, (60, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
        labels = torch.arange(60) % 10
        df = robust_ray.evaluate(model, {"clean": {}, "pgd": {"eps": [0.1], "steps": 3, "n": 30}}, data=(images, labels))
        assert df.shape == (2, 6) and list(df.suite) == ["clean", "pgd"], df
        assert "ray" not in sys.modules, sorted(m for m in sys.modules if m.startswith("ray"))
        print("ok")
        """
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


@pytest.mark.parametrize(
    "suites, message",
    [
        ({"pgd": {"eps": [0.1, 1.5]}}, r"suites\.pgd\.eps: eps\[1\]: 1.5 is outside \(0, 1\]"),
        ({"pgd": {"norm": "l2", "eps": [30]}}, r"suites\.pgd\.eps: eps\[0\]: 30 is outside \(0, 28\]"),
        ({"big": {"type": "pgd", "norm": "linfinity"}}, r"suites\.big\.norm: Input should be 'linf' or 'l2'"),
        ({"aa": {"type": "autoattack", "version": "quick"}}, r"suites\.aa\.version"),
        ({"nope": {}}, r"suites\.nope: unknown suite type 'nope'"),
        ({"mnist-a": {}}, r"suites\.mnist-a: .*reference model"),
    ],
)
def test_bad_suites_are_refused_with_their_key(lenet, suites, message):
    model, test = lenet
    with pytest.raises(ValueError, match=message):
        robust_ray.evaluate(model, suites, data=(test.images[:50], test.labels[:50]))


def test_a_softmax_model_is_refused(lenet):
    model, test = lenet
    with pytest.raises(ValueError, match="returns probabilities"):
        robust_ray.evaluate(
            nn.Sequential(model, nn.Softmax(dim=1)), {"pgd": {"n": 20}}, data=(test.images, test.labels)
        )
    assert model.training is False and all(p.requires_grad for p in model.parameters())
