"""Mixture of Class-Specific Experts (MoCSE), 004 §3.5 and §4.3, around any base network.

- N experts, one per class, each a copy of the base network with a binary output
  ``f_θn(x) ∈ R^2`` (logits for "not class n" / "class n").
- A non-parametric aggregator (004 §3.5): ``F(x)_n = f_θn(x)_True``, the expert's
  probability that x is of class n, i.e. ``softmax(f_θn(x))[1] = sigmoid(z_n1 - z_n0)``.
  ``forward`` returns F(x); the prediction is ``argmax_n F(x)_n`` (004 §3.5).
- Loss (004 §4.3): cross-entropy on the aggregated scores ``F(x)``, optimising all experts,
  plus the binary cross-entropy of each expert against "is x of class n", optimising that
  expert. 004 leaves two things open; our choices:
  (1) CE is taken with F(x) itself as the logits (the paper calls the aggregated true
      probabilities "the final logit space"), not with log F(x);
  (2) the per-expert BCE terms are summed over experts (each expert gets its own loss at
      full weight) and averaged over the batch; CE and the BCE sum are added unweighted.
  Soft targets (Mixup, TLAT) give each expert the target probability of its class.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .base import MODELS, ModelDef, Wrapper


class MoCSE(nn.Module):
    def __init__(self, make_expert: Callable[[], nn.Module], num_classes: int):
        super().__init__()
        self.experts = nn.ModuleList(make_expert() for _ in range(num_classes))

    def margins(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, N]``: each expert's logit difference "class n" minus "not class n"."""
        z = torch.stack([e(x) for e in self.experts], dim=1)  # [B, N, 2]
        return z[..., 1] - z[..., 0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # float32: under bf16 autocast every margin above ~5.5 would round to F = 1.0, and
        # the argmax would pick the first of the tied experts
        return torch.sigmoid(self.margins(x).float())

    def training_loss(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        m = self.margins(x).float()
        onehot = target if target.is_floating_point() else F.one_hot(target, m.shape[1]).to(m.dtype)
        ce = F.cross_entropy(torch.sigmoid(m), target)
        # with logits: stable, and no assert on NaN inputs, so a diverging run just diverges
        bce = F.binary_cross_entropy_with_logits(m, onehot, reduction="none").mean(0).sum()
        return ce + bce


def _mocse(base: ModelDef) -> ModelDef:
    return ModelDef(
        f"mocse:{base.name}",
        lambda c, k: MoCSE(lambda: base.factory(c, 2), k),
        base.input_sizes,
        f"Mixture of Class-Specific Experts (004 §3.5) of {base.name}",
    )


MODELS.register_wrapper(Wrapper("mocse", _mocse, "Mixture of Class-Specific Experts, 004 §3.5/§4.3"))
