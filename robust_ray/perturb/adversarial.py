"""Adversarial perturbations against a reference model (FGSM, Goodfellow et al.; 000 §2.2.1)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import perturbation
from .l2 import scale_to_l2
from .noise import _l2_limit


def loss_gradient_sign(
    model: torch.nn.Module, x: torch.Tensor, labels: torch.Tensor, batch: int = 1024
) -> torch.Tensor:
    """sign(grad_x J(theta, x, y)) for the cross-entropy J of ``model`` (eval mode).

    A confident model saturates the softmax: in float32, p_y - 1 rounds to 0 once the logit
    margin passes ~17 (the true-class term of the gradient is lost and the sign can be
    wrong), and every p_j underflows past ~104 (the gradient is exactly 0: no direction).
    The direction needs only the gradient's sign, not its size, so we backpropagate

        v = q - onehot(y),  q = softmax of the logits with the true class left out,

    which is p - onehot(y) divided by (1 - p_y) > 0 (for j != y, p_j = (1 - p_y) q_j;
    for y, p_y - 1 = -(1 - p_y)). Per image it is the exact loss gradient up to a
    positive factor, so sign() is unchanged, and it never underflows. Only pixels whose
    true gradient is zero (outside the receptive field, dead ReLUs) get sign 0 and stay.
    """
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = torch.empty_like(x)
    try:
        with torch.enable_grad():
            for s in range(0, len(x), batch):
                xb = x[s : s + batch].to(device).requires_grad_(True)
                yb = labels[s : s + batch].to(device)
                logits = model(xb).float()
                true = F.one_hot(yb, logits.shape[1]).bool()
                q = torch.softmax(logits.detach().masked_fill(true, float("-inf")), dim=1)
                v = q - true.to(q.dtype)
                (g,) = torch.autograd.grad(logits, xb, grad_outputs=v)
                out[s : s + batch] = torch.sign(g).to(x.device, x.dtype)
    finally:
        model.train(was_training)
    return out


def _fgsm_direction(x: torch.Tensor, seed: int, *, model: torch.nn.Module, labels: torch.Tensor) -> torch.Tensor:
    return loss_gradient_sign(model, x, labels)


@perturbation("fgsm_l2", unit="L2 distance", needs_model=True, limits=_l2_limit, direction=_fgsm_direction)
def fgsm_l2(x: torch.Tensor, level: float, seed: int, *, model: torch.nn.Module, labels: torch.Tensor) -> torch.Tensor:
    """FGSM x' = clip(x + eps sign(grad_x J(theta, x, y))) with eps chosen per image so that
    ||x' - x||_2 = ``level`` exactly (000 §2.2.1 and eq. 1: "the stride eps is proportional
    to the l2 distance"; the exact solve replaces the paper's search over eps). ``model`` is
    the reference model (000: the clean-trained one), ``labels`` the true labels.
    Deterministic: ``seed`` is unused."""
    return scale_to_l2(x, loss_gradient_sign(model, x, labels), level)
