"""Recipes: standard, PGD adversarial training (004 §3.3) and M-TLAT (001), their options
in the spec, and that they train every architecture on its own loss."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import yaml
from pydantic import ValidationError

from robust_ray.config import TrainingSpec, parse_spec
from robust_ray.data import stratified_sample, to_float
from robust_ray.errors import SpecError
from robust_ray.models import build_model, training_loss
from robust_ray.recipes import RECIPES, pgd
from robust_ray.seeding import seed_everything
from robust_ray.train import accuracy, fit

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def small(mnist5k):
    return mnist5k.train.subset(stratified_sample(mnist5k.train.labels, 0.3, seed=1))  # 1,200


@pytest.fixture(scope="module")
def trained(small):
    seed_everything(0)
    model = build_model("lenet5", 1, 10, (28, 28))
    fit(model, small, TrainingSpec(max_epochs=4, batch_size=32), 0, CPU)
    model.zero_grad(set_to_none=True)
    return model.eval()


def lenet(seed=0, name="lenet5"):
    seed_everything(seed)
    return build_model(name, 1, 10, (28, 28))


def numbers(r):
    """A fit's outcome without its timings."""
    return dataclasses.replace(r, history=[{k: v for k, v in h.items() if k != "train_s"} for h in r.history])


def settings(**kw) -> TrainingSpec:
    return TrainingSpec(**{"max_epochs": 2, "patience": 2, "batch_size": 64, **kw})


def test_registered_recipes():
    assert {"standard", "pgd_at", "m_tlat"} <= set(RECIPES)


# --- PGD (004 §3.1) ------------------------------------------------------------------


@pytest.mark.parametrize("norm, eps", [("linf", 0.1), ("linf", 0.3), ("l2", 1.5)])
def test_pgd_stays_in_the_ball_and_the_image_box(trained, mnist5k, norm, eps):
    x = to_float(mnist5k.test.images[:256])
    y = torch.as_tensor(mnist5k.test.labels[:256])
    gen = torch.Generator().manual_seed(0)
    x_adv = pgd(trained, x, y, eps, eps / 4, 10, norm, True, gen)
    d = (x_adv - x).flatten(1)
    size = d.abs().amax(1) if norm == "linf" else d.norm(dim=1)
    assert (size <= eps * (1 + 1e-5)).all() and x_adv.min() >= 0 and x_adv.max() <= 1
    assert training_loss(trained, x_adv, y) > training_loss(trained, x, y)
    assert all(p.grad is None for p in trained.parameters())


def test_stronger_pgd_hurts_more(trained, mnist5k):
    x = to_float(mnist5k.test.images[:300])
    y = torch.as_tensor(mnist5k.test.labels[:300])
    accs = [accuracy(trained, pgd(trained, x, y, e, e / 4, 6), y, CPU) for e in (0.05, 0.15, 0.3)]
    clean = accuracy(trained, x, y, CPU)
    assert clean > accs[0] > accs[1] > accs[2] and accs[2] < 0.05


def test_pgd_training_buys_robustness(small, mnist5k):
    """Madry et al.: training on PGD examples raises accuracy under the same attack."""
    x = to_float(mnist5k.test.images[:500])
    y = torch.as_tensor(mnist5k.test.labels[:500])
    robust = {}
    for recipe, opts in (("standard", {}), ("pgd_at", {"eps": 0.1, "step_size": 0.04, "steps": 3})):
        model = lenet()
        RECIPES.get(recipe)(model, small, settings(max_epochs=5, patience=5, batch_size=32), 0, CPU, **opts)
        model.eval()
        robust[recipe] = accuracy(model, pgd(model, x, y, 0.1, 0.025, 10, gen=torch.Generator().manual_seed(1)), y, CPU)
    assert robust["pgd_at"] > robust["standard"] + 0.1, robust


# --- M-TLAT (001) ------------------------------------------------------------------------


def test_m_tlat_trains_and_is_reproducible(small):
    runs = []
    for _ in range(2):
        model = lenet(seed=2)
        r = RECIPES.get("m_tlat")(model, small, settings(max_epochs=2), 2, CPU, eps=0.2)
        runs.append((r, model.state_dict()))
    (r1, w1), (r2, w2) = runs
    assert numbers(r1) == numbers(r2) and all(torch.equal(w1[k], w2[k]) for k in w1)
    assert r1.status == "ok" and r1.val_acc > 0.5


def test_m_tlat_with_no_attack_and_no_mixing_is_standard_training(small):
    """alpha→0 makes λ ∈ {0, 1} (no mixing); adv_weight=0 drops TLAT: plain CE remains."""
    model_a, model_b = lenet(), lenet()
    opts = {"alpha": 1e-6, "adv_weight": 0.0}
    ra = RECIPES.get("m_tlat")(model_a, small, settings(), 0, CPU, **opts)
    rb = RECIPES.get("standard")(model_b, small, settings(), 0, CPU)
    # a partner image weighted ~1 is still a real, correctly labelled image: same task
    assert abs(ra.val_acc - rb.val_acc) < 0.1


# --- any recipe, any architecture ---------------------------------------------------


@pytest.mark.parametrize("recipe, per_batch", [("standard", 1), ("pgd_at", 2), ("m_tlat", 3)])
def test_recipes_train_mocse_on_its_own_loss(small, recipe, per_batch):
    """Every loss a recipe takes (attack steps included) is the model's own: CE + BCE."""
    model = lenet(name="mocse:lenet5")
    calls = {"n": 0}
    own = model.training_loss

    def counting(x, target):
        calls["n"] += 1
        return own(x, target)

    model.training_loss = counting
    opts = {} if recipe == "standard" else {"steps": 1}
    r = RECIPES.get(recipe)(model, small.subset(slice(0, 400)), settings(max_epochs=1), 0, CPU, **opts)
    # 360 training images in batches of 64: 6 batches; one attack step where there is one,
    # and M-TLAT also takes the Mixup loss
    assert r.status == "ok" and calls["n"] == 6 * per_batch


# --- options ------------------------------------------------------------------------------


def test_options_come_from_the_spec_and_keywords_override(small, monkeypatch):
    seen = {}
    import robust_ray.recipes as rec

    real = rec.pgd

    def spy(model, x, target, eps, step_size, steps, norm="linf", random_start=True, gen=None, **kw):
        seen.update(eps=eps, step_size=step_size, steps=steps, norm=norm)
        return real(model, x, target, eps, step_size, steps, norm, random_start, gen, **kw)

    monkeypatch.setattr(rec, "pgd", spy)
    s = settings(max_epochs=1, recipe_options={"eps": 0.2, "steps": 2, "norm": "l2"})
    RECIPES.get("pgd_at")(lenet(), small.subset(slice(0, 200)), s, 0, CPU, steps=1)
    assert seen == {"eps": 0.2, "step_size": 2 / 255, "steps": 1, "norm": "l2"}
    with pytest.raises(ValidationError, match="steps"):
        RECIPES.get("pgd_at")(lenet(), small, settings(), 0, CPU, steps=0)
    with pytest.raises(ValidationError, match="extra"):
        RECIPES.get("standard")(lenet(), small, settings(), 0, CPU, eps=0.1)


def spec_with(training: dict) -> dict:
    return yaml.safe_load(
        """
        name: t
        architectures: [lenet5]
        design: {factors: {label_error: {levels: [0.1]}}}
        """
    ) | {"training": training}


@pytest.mark.parametrize(
    "training, path, message",
    [
        ({"recipe": "pgd_at", "recipe_options": {"eps": -1}}, "training.recipe_options.eps", "greater than 0"),
        ({"recipe": "pgd_at", "recipe_options": {"epss": 1}}, "training.recipe_options.epss", "unknown option 'epss' of recipe pgd_at"),
        ({"recipe": "pgd_at", "recipe_options": {"norm": "l1"}}, "training.recipe_options.norm", "'linf' or 'l2'"),
        ({"recipe": "standard", "recipe_options": {"eps": 0.1}}, "training.recipe_options.eps", "unknown option"),
        ({"recipe": "m_tlat", "recipe_options": {"adv_weight": 2}}, "training.recipe_options.adv_weight", "less than or equal to 1"),
        ({"recipe": "pgd"}, "training.recipe", "known: m_tlat, pgd_at, standard"),
    ],
)  # fmt: skip
def test_spec_errors_name_the_option(training, path, message):
    with pytest.raises(SpecError) as e:
        parse_spec(spec_with(training), "s.yaml")
    assert e.value.path == path and message in e.value.message


def test_spec_accepts_recipe_options():
    spec = parse_spec(spec_with({"recipe": "m_tlat", "recipe_options": {"eps": 0.3, "steps": 2}}), "s.yaml")
    assert RECIPES.get(spec.training.recipe).options.model_validate(spec.training.recipe_options).steps == 2


def test_reference_model_trains_with_the_standard_recipe_whatever_the_trials_recipe(mnist5k, small):
    """FGSM attacks the clean-trained model (000 §2.2.1): the trials' recipe options (here
    PGD's eps) are not the standard recipe's and must not reach it."""
    from robust_ray.cache import train_reference
    from robust_ray.plan import make_plan

    doc = spec_with({"recipe": "pgd_at", "recipe_options": {"eps": 0.1}, "max_epochs": 1, "batch_size": 64})
    doc["design"] = {"factors": {"fgsm_l2": {"levels": [1.0], "per_class": 5}}}
    (key,) = [k for k in make_plan(parse_spec(doc, "s.yaml")).datasets.values() if k.kind == "model"]
    base = dataclasses.replace(mnist5k, train=small)
    state = train_reference(key, base)
    assert set(state) == set(lenet().state_dict())
