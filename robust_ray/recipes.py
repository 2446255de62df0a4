"""Training recipes, registered by name: how a model is fitted to a composed training set.

A recipe is called as ``RECIPES.get(name)(model, train, settings, seed, device, on_epoch,
**options)`` and returns a :class:`~robust_ray.train.FitResult`. Every recipe runs the same
train-to-convergence loop (:func:`~robust_ray.train.fit`: early stopping, seeds, divergence
handling); what differs is the per-batch *objective*. Options are validated by the
recipe's own pydantic model; ``settings.recipe_options`` (the spec's
``training.recipe_options``) supplies them, keyword ``options`` override it.

Every objective trains on :func:`~robust_ray.models.training_loss`, so a recipe works with
any architecture, MoCSE's CE + BCE objective included (004 §4.3).

Adversarial examples are computed with the model in training mode (batch-norm uses the
batch's statistics, as common PGD-training code does), on the same batch, under the same
autocast; their gradients reach the inputs only, never the parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from .data import to_float
from .models import training_loss
from .registry import Registry
from .seeding import derive_seed
from .train import FitResult, Objective, fit


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class Context:
    """What an objective may need beyond its options."""

    gen: torch.Generator  # on the training device: attack starts, targets, partners
    rng: np.random.Generator  # host-side scalars (Mixup's λ)
    num_classes: int  # width of the model's output


@dataclass(frozen=True)
class Recipe:
    name: str
    options: type[Options]
    objective: Callable[[Options, Context], Objective]
    description: str

    def __call__(self, model, train, settings, seed, device, on_epoch=None, **options) -> FitResult:
        opts = self.options.model_validate({**(getattr(settings, "recipe_options", None) or {}), **options})
        # the recipe's own random draws get their own streams, so they never shift the
        # batch order or the model's initialisation
        rseed = derive_seed(seed, "recipe", self.name)
        ctx = Context(
            torch.Generator(device=device).manual_seed(rseed),
            np.random.default_rng(rseed),
            output_width(model, train.images[:1]),
        )
        return fit(model, train, settings, seed, device, on_epoch, self.objective(opts, ctx))


@torch.no_grad()
def output_width(model: nn.Module, image) -> int:
    """Number of classes the model scores: one forward pass on one image, in eval mode
    (nothing is updated, no random number is drawn)."""
    was = model.training
    model.eval()
    k = int(model(to_float(image, next(model.parameters()).device)).shape[1])
    model.train(was)
    return k


RECIPES: Registry[Recipe] = Registry("training recipe")


def register(recipe: Recipe) -> Recipe:
    return RECIPES.register(recipe.name, recipe)


# --- standard -----------------------------------------------------------------------

register(
    Recipe(
        "standard",
        Options,
        lambda opts, ctx: training_loss,
        "the model's own loss on the training batch, to convergence (000 §2.1)",
    )
)


# --- PGD adversarial training -----------------------------------------------------------


def _per_sample_norm(t: torch.Tensor) -> torch.Tensor:
    return t.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (t.dim() - 1)))


def project(delta: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    """Π of 004 §3.1: the nearest point of the ``norm`` ball of radius ``eps``."""
    if norm == "linf":
        return delta.clamp(-eps, eps)
    return delta * (eps / _per_sample_norm(delta)).clamp(max=1.0)


def pgd(
    model: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    eps: float,
    step_size: float,
    steps: int,
    norm: Literal["linf", "l2"] = "linf",
    random_start: bool = True,
    gen: torch.Generator | None = None,
    loss_fn: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor] = training_loss,
) -> torch.Tensor:
    """Projected gradient ascent on ``loss_fn`` (004 §3.1, Madry et al. 2018): from a random
    point of the ball, ``steps`` steps of ``step_size`` along sign(∇) (L∞) or ∇/‖∇‖₂ (L2),
    each projected back onto the ball around ``x`` and onto the [0, 1] image box.
    Returns detached adversarial images; parameter gradients are left untouched."""
    x = x.detach()
    delta = torch.zeros_like(x)
    if random_start:
        if norm == "linf":
            delta = (torch.rand(x.shape, generator=gen, device=x.device, dtype=x.dtype) * 2 - 1) * eps
        else:
            d = torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype)
            r = torch.rand((len(x),) + (1,) * (x.dim() - 1), generator=gen, device=x.device, dtype=x.dtype)
            delta = d / _per_sample_norm(d) * r * eps
    x_adv = (x + delta).clamp(0, 1)
    for _ in range(steps):
        x_adv.requires_grad_(True)
        with torch.enable_grad():
            (grad,) = torch.autograd.grad(loss_fn(model, x_adv, target), x_adv)
        step = grad.sign() if norm == "linf" else grad / _per_sample_norm(grad)
        x_adv = (x + project(x_adv.detach() + step_size * step - x, eps, norm)).clamp(0, 1)
    return x_adv.detach()


class PGDOptions(Options):
    """Defaults: Madry et al. (2018) CIFAR-10 training attack (L∞ 8/255, 7 steps of 2/255).
    Their MNIST setting is eps 0.3, step_size 0.01, steps 40."""

    eps: float = Field(8 / 255, gt=0, description="radius of the norm ball, [0, 1] pixel units")
    step_size: float = Field(2 / 255, gt=0, description="α of 004 §3.1")
    steps: int = Field(7, ge=1)
    norm: Literal["linf", "l2"] = "linf"
    random_start: bool = True


def _pgd_objective(opts: PGDOptions, ctx: Context) -> Objective:
    def objective(model, x, y):
        x_adv = pgd(model, x, y, opts.eps, opts.step_size, opts.steps, opts.norm, opts.random_start, ctx.gen)
        return training_loss(model, x_adv, y)

    return objective


register(
    Recipe(
        "pgd_at",
        PGDOptions,
        _pgd_objective,
        "PGD adversarial training, min over θ of max over the ball (004 §3.3, Madry et al. 2018)",
    )
)


# --- M-TLAT ---------------------------------------------------------------------------


class MTLATOptions(Options):
    alpha: float = Field(0.4, gt=0, description="Mixup λ ~ Beta(alpha, alpha)")
    eps: float = Field(8 / 255, gt=0, description="largest L∞ amplitude of the targeted attack")
    steps: int = Field(1, ge=1, description="targeted sign-gradient steps of eps_i/steps each")
    target_weight: float = Field(0.5, ge=0, le=1, description="label weight of the target at amplitude eps")
    adv_weight: float = Field(0.5, ge=0, le=1, description="weight of the TLAT loss; 1 - it on the Mixup loss")


def _mtlat_objective(opts: MTLATOptions, ctx: Context) -> Objective:
    """M-TLAT, Mixup + Targeted Labeling Adversarial Training (001, Laugros et al. 2020).

    The abstract (all 001 gives) fixes only: Mixup is combined with TLAT, and TLAT
    "interpolates the target labels of adversarial examples with the ground-truth labels".
    Everything else is open; our choices, each an option where it is a number:

    1. Mixup (Zhang et al. 2018): one λ ~ Beta(alpha, alpha) per batch, partner = a random
       permutation of the batch; x_mix = λx + (1-λ)x', y_mix = λy + (1-λ)y' (soft labels).
    2. TLAT acts on the *mixed* images: target class t_i uniform over the classes other than
       the dominant class of y_mix,i; amplitude ε_i ~ U(0, eps) per image; ``steps``
       targeted sign-gradient *descent* steps of ε_i/steps on the loss towards t_i
       (targeted FGSM when steps = 1; L∞ by construction, clipped to [0, 1]).
    3. Label: y_adv,i = (1-β_i) y_mix,i + β_i onehot(t_i) with β_i = target_weight·ε_i/eps,
       so the label moves towards the target in proportion to the perturbation.
    4. Loss: (1-adv_weight)·L(x_mix, y_mix) + adv_weight·L(x_adv, y_adv), L = the model's
       training loss with soft targets.
    """

    def objective(model, x, y):
        k, gen = ctx.num_classes, ctx.gen
        lam = float(ctx.rng.beta(opts.alpha, opts.alpha))
        partner = torch.randperm(len(y), generator=gen, device=y.device)
        onehot = F.one_hot(y, k).to(x.dtype)
        x_mix = lam * x + (1 - lam) * x[partner]
        y_mix = lam * onehot + (1 - lam) * onehot[partner]

        dominant = y_mix.argmax(1)
        shift = torch.randint(1, k, (len(y),), generator=gen, device=y.device)
        t = (dominant + shift) % k
        shape = (len(y),) + (1,) * (x.dim() - 1)
        eps_i = torch.rand(shape, generator=gen, device=x.device, dtype=x.dtype) * opts.eps
        x_adv = x_mix.detach()
        for _ in range(opts.steps):
            x_adv.requires_grad_(True)
            with torch.enable_grad():
                (grad,) = torch.autograd.grad(training_loss(model, x_adv, t), x_adv)
            x_adv = (x_adv.detach() - eps_i / opts.steps * grad.sign()).clamp(0, 1)
        beta = opts.target_weight * eps_i.view(-1, 1) / opts.eps
        y_adv = (1 - beta) * y_mix + beta * F.one_hot(t, k).to(x.dtype)

        loss = opts.adv_weight * training_loss(model, x_adv, y_adv)
        if opts.adv_weight < 1:
            loss = loss + (1 - opts.adv_weight) * training_loss(model, x_mix, y_mix)
        return loss

    return objective


register(
    Recipe(
        "m_tlat",
        MTLATOptions,
        _mtlat_objective,
        "Mixup + Targeted Labeling Adversarial Training (001, Laugros et al. 2020)",
    )
)
