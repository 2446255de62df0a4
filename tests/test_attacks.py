"""White-box attacks: our PGD behaves as robust accuracy must, agrees with ART's, and
AutoAttack (ART) is at least as strong; the model and the global RNGs are left as found."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from attack_models import trained_lenet5
from torch import nn

from robust_ray.attacks import autoattack, pgd
from robust_ray.data import to_float
from robust_ray.whitebox import parse_options


@pytest.fixture(scope="module")
def lenet():
    return trained_lenet5()


def clean_right(model, images, labels) -> torch.Tensor:
    with torch.no_grad():
        return model(to_float(images)).argmax(1) == torch.as_tensor(labels)


@pytest.mark.parametrize("norm, eps", [("linf", [0.05, 0.1, 0.3]), ("l2", [0.5, 1.5, 3.0])])
def test_pgd_accuracy_is_at_most_clean_and_falls_with_eps(lenet, norm, eps):
    model, test = lenet
    x, y = test.images[:200], test.labels[:200]
    right = clean_right(model, x, y)
    res = pgd(model, x, y, eps, norm=norm, steps=10, seed=1)
    acc = res.accuracy
    assert acc[0] <= float(right.float().mean())
    assert all(b <= a for a, b in zip(acc, acc[1:])), acc
    assert acc[-1] < 0.5 * acc[0]  # the attack does something
    for robust in res.robust:  # robust implies right unperturbed, image by image
        assert not (robust & ~right).any()


def test_pgd_is_seeded_and_keeps_adversarial_images_inside_the_ball(lenet):
    model, test = lenet
    x, y = test.images[:100], test.labels[:100]
    a = pgd(model, x, y, [0.1], norm="linf", restarts=2, seed=3, return_adversarial=True)
    b = pgd(model, x, y, [0.1], norm="linf", restarts=2, seed=3)
    assert torch.equal(a.robust[0], b.robust[0])
    adv, x0 = a.adversarial[0], to_float(x)
    assert (adv - x0).abs().max() <= 0.1 + 1e-6 and adv.min() >= 0 and adv.max() <= 1
    fooled = ~a.robust[0]
    assert (clean_right(model, adv, y)[fooled] == False).all()  # noqa: E712  the kept images do fool it
    l2 = pgd(model, x, y, [1.5], norm="l2", seed=3, return_adversarial=True).adversarial[0]
    assert (l2 - x0).flatten(1).norm(dim=1).max() <= 1.5 + 1e-4


@pytest.mark.parametrize("norm, eps, alpha", [("linf", 0.1, 0.025), ("l2", 1.5, 0.375)])
def test_our_pgd_is_within_one_point_of_arts(lenet, norm, eps, alpha):
    """Same 500 images, start at x (no random init), same step size and steps: the
    robust accuracies agree within 1 percentage point. (They need not be equal: ours counts
    an image fooled at any iterate, ART's at the last, and the two normalise L2 gradients
    with different guards against zero; measured: equal under L∞, 0.2 points apart under L2.)"""
    from art.attacks.evasion import ProjectedGradientDescent
    from art.estimators.classification import PyTorchClassifier

    model, test = lenet
    x, y = test.images[:500], test.labels[:500]
    ours = pgd(model, x, y, [eps], norm=norm, steps=10, step_size=alpha, random_start=False).accuracy[0]
    clf = PyTorchClassifier(
        model, loss=nn.CrossEntropyLoss(), input_shape=(1, 28, 28), nb_classes=10, clip_values=(0, 1)
    )
    art_norm = np.inf if norm == "linf" else 2
    attack = ProjectedGradientDescent(clf, norm=art_norm, eps=eps, eps_step=alpha, max_iter=10, num_random_init=0,
                                      batch_size=500, verbose=False)  # fmt: skip
    xa = attack.generate(to_float(x).numpy(), y=y)
    theirs = float((clf.predict(xa).argmax(1) == y).mean())
    assert 0.05 < theirs < 0.95  # a level where the attack is neither nothing nor everything
    assert abs(ours - theirs) <= 0.01, (ours, theirs)


def test_autoattack_cheap_is_at_least_as_strong_as_pgd_and_leaves_no_trace(lenet):
    model, test = lenet
    x, y = test.images[:100], test.labels[:100]
    model.train()  # the attack must evaluate in eval mode and hand the model back as it was
    np_state, torch_state = np.random.get_state(), torch.get_rng_state()
    aa = autoattack(model, x, y, [0.1], version="cheap", seed=0)
    assert model.training and all(p.requires_grad and p.grad is None for p in model.parameters())
    model.eval()
    assert np.array_equal(np.random.get_state()[1], np_state[1]) and torch.equal(torch.get_rng_state(), torch_state)
    ours = pgd(model, x, y, [0.1], steps=10, seed=0)
    assert aa.accuracy[0] <= ours.accuracy[0] + 0.01, (aa.accuracy, ours.accuracy)
    assert aa.n == 100 and 0 <= aa.correct[0] <= int(clean_right(model, x, y).sum())


class Softmaxed(nn.Module):
    def __init__(self, base: nn.Module, log: bool):
        super().__init__()
        self.base, self.log = base, log

    def forward(self, x):
        return (torch.log_softmax if self.log else torch.softmax)(self.base(x), dim=1)


@pytest.mark.parametrize("log, what", [(False, "probabilities"), (True, "log-probabilities")])
@pytest.mark.parametrize("attack", [pgd, autoattack])
def test_a_model_that_does_not_return_logits_is_refused(lenet, log, what, attack):
    model, test = lenet
    with pytest.raises(ValueError, match=f"returns {what}"):
        attack(Softmaxed(model, log), test.images[:20], test.labels[:20], [0.1])


def test_bad_attack_arguments_are_refused(lenet):
    model, test = lenet
    x, y = test.images[:8], test.labels[:8]
    with pytest.raises(ValueError, match=r"eps\[1\] = 1.5 is outside \(0, 1\]"):
        pgd(model, x, y, [0.1, 1.5])
    with pytest.raises(ValueError, match="outside .0, 28]"):
        pgd(model, x, y, [29.0], norm="l2")  # sqrt(1*28*28) = 28: farther than any two images
    with pytest.raises(ValueError, match="unknown norm 'l1'"):
        pgd(model, x, y, [0.1], norm="l1")
    with pytest.raises(ValueError, match="unknown AutoAttack version"):
        autoattack(model, x, y, [0.1], version="fast")


def test_autoattack_without_art_names_the_extra(lenet, monkeypatch):
    for mod in ("art", "art.attacks", "art.estimators", "art.estimators.classification"):
        monkeypatch.setitem(sys.modules, mod, None)
    model, test = lenet
    with pytest.raises(ImportError, match=r'pip install "robust-ray\[attacks\]"'):
        autoattack(model, test.images[:8], test.labels[:8], [0.1])


@pytest.mark.parametrize(
    "kind, options, key",
    [
        ("pgd", {"eps": [0.1, 1.2]}, "eps[1]"),
        ("pgd", {"norm": "l2", "eps": [28.5]}, "eps[0]"),
        ("pgd", {"norm": "l1"}, "norm"),
        ("pgd", {"steps": 0}, "steps"),
        ("pgd", {"steps": 1001}, "steps"),
        ("pgd", {"restarts": 101}, "restarts"),
        ("pgd", {"eps": [0.1, 0.1]}, "eps"),
        ("autoattack", {"version": "fast"}, "version"),
        ("autoattack", {"attacks": ["fab"]}, "attacks"),
        ("autoattack", {"steps": 10}, "steps"),  # a PGD option is not AutoAttack's
    ],
)
def test_suite_options_out_of_bounds_are_refused(kind, options, key):
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as e:
        parse_options(kind, options, (1, 28, 28))
    err = e.value.errors()[0]
    assert key.split("[")[0] == str(err["loc"][0]) and (key in err["msg"] or "[" not in key)


def test_suite_options_defaults_and_condition_names():
    p = parse_options("pgd", {}, (1, 28, 28))
    assert (p.norm, p.eps, p.steps, p.restarts, p.n, p.step_size) == ("linf", [0.1, 0.2, 0.3], 10, 1, 1000, None)
    assert p.conditions() == [("eps=0.1", 0.1), ("eps=0.2", 0.2), ("eps=0.3", 0.3)]
    assert parse_options("pgd", {"norm": "l2", "eps": [28.0]}, (1, 28, 28)).eps == [28.0]
    assert (
        parse_options("autoattack", {"version": "cheap", "eps": [0.3]}).describe()
        == "white-box AutoAttack (cheap) L∞ at ε = 0.3"
    )
