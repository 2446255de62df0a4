"""White-box attacks on a model's own weights: PGD-k (ours, vectorised) and AutoAttack (ART).

PGD (Madry et al. 2018, eq. (2) and §2.1): from a random point of the eps-ball around x,
``steps`` iterations of

    x_{t+1} = Proj_{B(x, eps) ∩ [0,1]^d} ( x_t + alpha * s(grad_x L(theta, x_t, y)) )

with s = sign under L∞ and s = g / ||g||_2 under L2, and L the cross-entropy; ``restarts``
random starts, an image counting as robust only if it survives all of them (the worst
case per image). An image is adversarial as soon as any iterate the attack evaluates is
misclassified (every such iterate lies in the ball), and is then dropped from the batch:
the rest of the attack runs on the images still standing. An image the model gets wrong
unperturbed is never robust, so robust accuracy <= clean accuracy by construction.

AutoAttack (Croce & Hein 2020) is ART's :class:`art.attacks.evasion.AutoAttack` on a
:class:`art.estimators.classification.PyTorchClassifier`, with the attack lists of
:data:`AUTOATTACK_VERSIONS`. Both attacks run the model in eval mode with its parameters
frozen (``requires_grad_(False)`` during the attack, restored after: no gradient reaches
the weights), on inputs in [0, 1] (the models' own input range: they normalise inside, if
at all), on the device the model is on, and neither touches a global RNG: PGD draws from
its own ``torch.Generator``; ART draws from NumPy's global RNG, which is seeded for the
call and put back as it was.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .data import to_float
from .seeding import derive_seed

NORMS = ("linf", "l2")
ART_MISSING = 'AutoAttack needs the adversarial-robustness-toolbox: pip install "robust-ray[attacks]"'


@dataclass(frozen=True)
class AttackResult:
    """Per epsilon: how many of the ``n`` images the model still classifies right."""

    eps: list[float]
    n: int
    correct: list[int]
    robust: list[torch.Tensor]  # per eps: bool [n] on the CPU, True = right after the attack
    adversarial: list[torch.Tensor] | None = None  # per eps: float32 [n, C, H, W] on the CPU

    @property
    def accuracy(self) -> list[float]:
        return [c / self.n if self.n else float("nan") for c in self.correct]


# --- the model during an attack -----------------------------------------------------------


def model_device(model: nn.Module) -> torch.device:
    p = next(iter(model.parameters()), None)
    return p.device if p is not None else torch.device("cpu")


@contextmanager
def frozen(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` in eval mode with no parameter requiring a gradient; both put back after,
    module by module (``model.train(flag)`` would set every submodule alike, and a model
    may hold an eval-mode part inside a train-mode whole: a frozen backbone, say)."""
    modes = [(m, m.training) for m in model.modules()]
    flags = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield model
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        for m, mode in modes:
            m.training = mode


def check_logits(out: torch.Tensor) -> None:
    """Refuse outputs that are probabilities or log-probabilities: an attack on them
    attacks a saturated softmax (gradients vanish: Carlini & Wagner 2017 §V) and its
    robust accuracy is meaningless. Raises ValueError."""
    out = out.detach().double()
    if out.ndim != 2 or len(out) == 0:
        raise ValueError(
            f"the model must return class scores [batch, classes], not a tensor of shape {tuple(out.shape)}"
        )
    ones = torch.ones(len(out), dtype=out.dtype, device=out.device)
    if (out >= 0).all() and torch.allclose(out.sum(1), ones, atol=1e-4):
        raise ValueError(
            "the model returns probabilities (every output row is >= 0 and sums to 1); attacks need logits: "
            "drop the final softmax"
        )
    if (out <= 0).all() and torch.allclose(out.exp().sum(1), ones, atol=1e-4):
        raise ValueError(
            "the model returns log-probabilities (every row is <= 0 and its exp sums to 1); attacks need logits: "
            "drop the final log_softmax"
        )


def _check_eps(eps: Sequence[float], norm: str, dims: int) -> list[float]:
    if norm not in NORMS:
        raise ValueError(f"unknown norm {norm!r}; known: {', '.join(NORMS)}")
    top = 1.0 if norm == "linf" else dims**0.5  # the largest distance inside [0, 1]^d
    out = [float(e) for e in eps]
    for i, e in enumerate(out):
        if not 0 < e <= top:
            raise ValueError(f"eps[{i}] = {e:g} is outside (0, {top:g}] for norm {norm} on {dims} pixels")
    return out


# --- PGD ----------------------------------------------------------------------------------


def _loss_direction(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """dL/dlogits of the cross-entropy up to a positive factor per image: q - onehot(y) with
    q the softmax of the other classes (= (p - onehot(y)) / (1 - p_y); see
    :func:`robust_ray.perturb.adversarial.loss_gradient_sign`). sign() and g/||g|| ignore
    the factor, and unlike p - onehot(y) it does not underflow to 0 on a confident model,
    which would stall PGD exactly where a model looks most robust (gradient masking)."""
    true = F.one_hot(y, logits.shape[1]).bool()
    q = torch.softmax(logits.detach().float().masked_fill(true, float("-inf")), dim=1)
    return q - true.to(q.dtype)


def _per_image_norm(t: torch.Tensor) -> torch.Tensor:
    return t.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (t.dim() - 1)))


def _project(xa: torch.Tensor, x0: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    """Onto B(x0, eps) ∩ [0, 1]^d: the ball, then the box (Madry et al.'s projection; the box
    clip keeps a point inside an L∞ ball, and only shrinks its L2 distance)."""
    d = xa - x0
    if norm == "linf":
        d = d.clamp(-eps, eps)
    else:
        d = d * (eps / _per_image_norm(d)).clamp(max=1.0)
    return (x0 + d).clamp_(0.0, 1.0)


def _random_start(x0: torch.Tensor, eps: float, norm: str, gen: torch.Generator) -> torch.Tensor:
    """A uniform point of the eps-ball (L2: Gaussian direction, radius eps * U^(1/d))."""
    if norm == "linf":
        d = (torch.rand(x0.shape, generator=gen, device=x0.device) * 2 - 1) * eps
    else:
        g = torch.randn(x0.shape, generator=gen, device=x0.device)
        u = torch.rand(len(x0), generator=gen, device=x0.device).view(-1, *([1] * (x0.dim() - 1)))
        d = g / _per_image_norm(g) * eps * u ** (1.0 / x0[0].numel())
    return (x0 + d).clamp_(0.0, 1.0)


def _pgd_batch(model, x0, y, eps, norm, steps, alpha, restarts, random_start, gen):
    """(robust bool [B], adversarial images [B, ...]) for one batch at one eps."""
    with torch.no_grad():
        logits = model(x0)
    check_logits(logits)
    robust = logits.argmax(1) == y
    adv = x0.clone()
    for _ in range(restarts):
        act = robust.nonzero().squeeze(1)  # only images no restart has fooled yet
        if len(act) == 0:
            break
        xo, ya = x0[act], y[act]
        xa = _random_start(xo, eps, norm, gen) if random_start else xo.clone()
        for t in range(steps + 1):
            xa.requires_grad_(True)
            logits = model(xa)
            fooled = logits.detach().argmax(1) != ya
            if fooled.any():  # an adversarial example found: keep it, stop attacking it
                hit = act[fooled]
                robust[hit] = False
                adv[hit] = xa.detach()[fooled]
                keep = ~fooled
                act, xo, ya, logits, xa_kept = act[keep], xo[keep], ya[keep], logits[keep], xa[keep]
            else:
                xa_kept = xa
            if t == steps or len(act) == 0:
                adv[act] = xa_kept.detach()
                break
            (g,) = torch.autograd.grad(logits, xa, grad_outputs=_loss_direction(logits, ya))
            g = g[~fooled] if fooled.any() else g
            step = g.sign() if norm == "linf" else g / _per_image_norm(g)
            xa = _project(xa_kept.detach() + alpha * step, xo, eps, norm)
    return robust, adv


def pgd(
    model: nn.Module,
    images: np.ndarray | torch.Tensor,
    labels: np.ndarray | torch.Tensor,
    eps: Sequence[float],
    *,
    norm: str = "linf",
    steps: int = 10,
    step_size: float | Sequence[float] | None = None,
    restarts: int = 1,
    random_start: bool = True,
    seed: int = 0,
    batch_size: int | None = None,
    return_adversarial: bool = False,
) -> AttackResult:
    """PGD-``steps`` robust accuracy of ``model`` at each of ``eps`` (see the module doc).

    ``images``: [N, C, H, W] uint8 (0..255) or float in [0, 1]; ``labels``: [N] class indices.
    ``step_size`` alpha defaults to 2.5 * eps / steps (Madry et al. §B: enough to reach the
    ball's boundary from anywhere in it); one value for all eps, or one per eps.
    ``random_start=False`` starts at x (deterministic, as ART's ``num_random_init=0``).
    Batches of ``batch_size`` (default 512 on CPU, 4096 elsewhere) on the model's device."""
    device = model_device(model)
    y_all = torch.as_tensor(labels, dtype=torch.long)
    dims = int(np.prod(tuple(images.shape[1:])))
    eps = _check_eps(eps, norm, dims)
    if not 1 <= steps or not 1 <= restarts:
        raise ValueError(f"steps and restarts must be >= 1 (got {steps}, {restarts})")
    alphas = [2.5 * e / steps for e in eps] if step_size is None else (
        [float(step_size)] * len(eps) if np.isscalar(step_size) else [float(a) for a in step_size]
    )  # fmt: skip
    if len(alphas) != len(eps) or not all(a > 0 for a in alphas):
        raise ValueError(f"step_size must be > 0, one value or one per eps (got {step_size!r})")
    bs = batch_size or (512 if device.type == "cpu" else 4096)
    n = len(y_all)
    robust_all, adv_all = [], []
    with frozen(model), torch.inference_mode(False), torch.enable_grad():
        for ei, (e, a) in enumerate(zip(eps, alphas)):
            gen = torch.Generator(device=device).manual_seed(derive_seed(seed, "pgd", norm, ei) % 2**63)
            rob = torch.empty(n, dtype=torch.bool)
            adv = torch.empty((n, *images.shape[1:]), dtype=torch.float32) if return_adversarial else None
            for s in range(0, n, bs):
                x0 = to_float(images[s : s + bs], device).clone()
                r, xa = _pgd_batch(
                    model, x0, y_all[s : s + bs].to(device), e, norm, steps, a, restarts, random_start, gen
                )
                rob[s : s + bs] = r.cpu()
                if adv is not None:
                    adv[s : s + bs] = xa.cpu()
            robust_all.append(rob)
            adv_all.append(adv)
    return AttackResult(eps, n, [int(r.sum()) for r in robust_all], robust_all, adv_all if return_adversarial else None)


# --- AutoAttack (ART) ---------------------------------------------------------------------

# Croce & Hein 2020 §4 "standard": APGD-CE, APGD-T (targeted DLR), FAB-T, Square (5,000
# queries), one restart each. ART has no FAB: its AutoAttack puts DeepFool in that place,
# as we do; its targeted pass runs each attack against every other class (APGD-CE-T and
# APGD-DLR-T = APGD-T; DeepFool and Square have no targeted form and are skipped there).
# "rand" (for randomised defences) is APGD-CE + APGD-DLR; AutoAttack's 20-sample EOT is
# not in ART, and is a no-op here anyway: models in eval mode are deterministic.
# "cheap" is ours: APGD-CE + APGD-DLR, 20 iterations, 1 restart, untargeted: a screening
# attack (~40 fwd+bwd per image), still stronger than PGD-10 on the models we train.
AUTOATTACK_VERSIONS: dict[str, tuple[list[str], int, bool]] = {
    # version: (attacks, APGD iterations, targeted pass)
    "standard": (["apgd-ce", "apgd-dlr", "deepfool", "square"], 100, True),
    "rand": (["apgd-ce", "apgd-dlr"], 100, False),
    "cheap": (["apgd-ce", "apgd-dlr"], 20, False),
}
AUTOATTACK_ATTACKS = ("apgd-ce", "apgd-dlr", "deepfool", "square")


def _art():
    try:
        from art.attacks import evasion
        from art.estimators.classification import PyTorchClassifier
    except ImportError as e:
        raise ImportError(f"{ART_MISSING} ({e})") from None
    return evasion, PyTorchClassifier


def _art_attacks(evasion, clf, names: Sequence[str], eps: float, norm, iters: int, batch_size: int) -> list:
    out = []
    for name in names:
        if name in ("apgd-ce", "apgd-dlr"):
            loss = "cross_entropy" if name == "apgd-ce" else "difference_logits_ratio"
            out.append(
                evasion.AutoProjectedGradientDescent(
                    clf,
                    norm=norm,
                    eps=eps,
                    eps_step=2 * eps,
                    max_iter=iters,
                    targeted=False,
                    nb_random_init=1,
                    batch_size=batch_size,
                    loss_type=loss,
                    verbose=False,
                )
            )  # fmt: skip  (eps_step: APGD's first step, 2 eps in Croce & Hein Alg. 1)
        elif name == "deepfool":
            out.append(
                evasion.DeepFool(clf, max_iter=100, epsilon=1e-3, nb_grads=10, batch_size=batch_size, verbose=False)
            )
        elif name == "square":
            out.append(evasion.SquareAttack(clf, norm=norm, eps=eps, max_iter=5000, p_init=0.8, nb_restarts=1,
                                            batch_size=batch_size, verbose=False))  # fmt: skip
        else:
            raise ValueError(f"unknown AutoAttack attack {name!r}; known: {', '.join(AUTOATTACK_ATTACKS)}")
    return out


@contextmanager
def _global_rng_kept(seed: int, device: torch.device) -> Iterator[None]:
    """NumPy's (and torch's) global RNG seeded for the block, then as they were."""
    state = np.random.get_state()
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)
        try:
            yield
        finally:
            np.random.set_state(state)


def autoattack(
    model: nn.Module,
    images: np.ndarray | torch.Tensor,
    labels: np.ndarray | torch.Tensor,
    eps: Sequence[float],
    *,
    norm: str = "linf",
    version: str = "cheap",
    attacks: Sequence[str] | None = None,
    seed: int = 0,
    batch_size: int = 256,
    return_adversarial: bool = False,
) -> AttackResult:
    """AutoAttack robust accuracy at each of ``eps``: ``version`` picks the attack list of
    :data:`AUTOATTACK_VERSIONS`; ``attacks`` (names of :data:`AUTOATTACK_ATTACKS`) replaces it
    (100 APGD iterations, untargeted). Each attack runs on the images all earlier ones left
    standing (ART's AutoAttack); an image is robust if it survives them all."""
    evasion, PyTorchClassifier = _art()
    device = model_device(model)
    x = to_float(images, "cpu").numpy()
    y = torch.as_tensor(labels, dtype=torch.long).numpy()
    eps = _check_eps(eps, norm, int(np.prod(x.shape[1:])))
    if attacks is not None:
        names, iters, targeted = list(attacks), 100, False
    elif version in AUTOATTACK_VERSIONS:
        names, iters, targeted = AUTOATTACK_VERSIONS[version]
    else:
        raise ValueError(f"unknown AutoAttack version {version!r}; known: {', '.join(AUTOATTACK_VERSIONS)}")
    art_norm = np.inf if norm == "linf" else 2
    robust_all, adv_all = [], []
    with frozen(model):
        with torch.no_grad():
            check_logits(model(to_float(x[: min(len(x), 256)], device)))
        clf = PyTorchClassifier(
            model, loss=nn.CrossEntropyLoss(), input_shape=x.shape[1:], nb_classes=int(model(to_float(x[:1], device)).shape[1]),
            clip_values=(0.0, 1.0), device_type="gpu" if device.type == "cuda" else "cpu",
        )  # fmt: skip
        for ei, e in enumerate(eps):
            with _global_rng_kept(derive_seed(seed, "autoattack", norm, ei), device):
                aa = evasion.AutoAttack(
                    clf, norm=art_norm, eps=e, eps_step=2 * e, batch_size=batch_size, targeted=targeted,
                    attacks=_art_attacks(evasion, clf, names, e, art_norm, iters, batch_size),
                )  # fmt: skip
                xa = aa.generate(x.copy(), y=y)
                pred = clf.predict(xa, batch_size=batch_size).argmax(1)
            # ART keeps an adversarial image only within eps (relative slack 1e-4): count that
            rob = torch.from_numpy(pred == y)
            robust_all.append(rob)
            adv_all.append(torch.from_numpy(xa) if return_adversarial else None)
    return AttackResult(
        eps, len(y), [int(r.sum()) for r in robust_all], robust_all, adv_all if return_adversarial else None
    )
