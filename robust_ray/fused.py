"""K small models trained as one (issue 19 item 1): the fused counterpart of :func:`.train.fit`.

Many LeNet-5-sized trials leave a device nearly idle: each pays its own Python loop and
kernel launches. Here K models of one architecture are stacked with ``torch.func``
(``stack_module_state`` + ``functional_call`` + ``vmap``) and every step trains all of
them in one batched call, each on its own training set:

- **its own data order**: model k's validation split and per-epoch permutations come from
  its own seed exactly as :func:`.train.fit` draws them, so fused and unfused models see
  the same batches in the same order; where training sets differ in size (class imbalance
  changes n) a model's batch is padded and masked, and a model whose epoch has no batch
  left does not step;
- **its own optimiser state**: Adam (or SGD with momentum), written out on the stacked
  tensors with torch's own update formulas, stepping only the models with a batch;
- **its own early stopping**: validation per model after each epoch; a model whose
  patience ran out (or whose loss went non-finite: ``diverged``) keeps its best weights
  and stops updating while the others go on.

The result is one :class:`.train.FitResult` per model, as K calls of ``fit`` would give.
Limits: the standard objective (cross-entropy on the model's logits), models without
buffers (batch norm) or dropout whose randomness ``vmap`` would draw differently; LeNet-5
is the model this is for. Nothing here imports Ray.
"""

from __future__ import annotations

import copy
import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from .data import ImageSet, stratified_sample, to_float
from .seeding import seed_everything
from .train import FitResult, accuracy


def fusable(model: nn.Module) -> str | None:
    """Why ``model`` cannot be trained fused, or None."""
    if any(True for _ in model.buffers()):
        return "it has buffers (batch norm): vmap cannot update them per model"
    if any(isinstance(m, nn.Dropout) and m.p > 0 for m in model.modules()):
        return "it has dropout: vmap would draw its masks differently from an unfused trial"
    if getattr(model, "training_loss", None) is not None:
        return "it has its own training loss; fused training uses cross-entropy"
    return None


def _split(train: ImageSet, settings, seed: int, device):
    val_idx = stratified_sample(train.labels, settings.val_fraction, seed)
    mask = np.ones(len(train), bool)
    mask[val_idx] = False
    return (to_float(train.images[mask], device), torch.as_tensor(train.labels[mask], device=device),
            to_float(train.images[val_idx], device), torch.as_tensor(train.labels[val_idx], device=device))  # fmt: skip


class _StackedOptimizer:
    """torch.optim.Adam / SGD(momentum) on stacked parameters ``[K, ...]``, stepping only
    the models in ``active`` (a bool [K]); the formulas are torch's (single-tensor path)."""

    def __init__(self, params: dict[str, torch.Tensor], settings, k: int):
        self.s, self.params = settings, params
        self.state = {n: (torch.zeros_like(p), torch.zeros_like(p)) for n, p in params.items()}
        self.steps = torch.zeros(k, dtype=torch.float64)

    @torch.no_grad()
    def step(self, active: torch.Tensor) -> None:
        s = self.s
        self.steps += active.double()
        for n, p in self.params.items():
            g = p.grad
            if s.weight_decay:
                g = g.add(p, alpha=s.weight_decay)
            m, v = self.state[n]
            on = active.view(-1, *([1] * (p.dim() - 1))).to(p.dtype)
            if s.optimizer == "sgd":  # dampening 0, no Nesterov: the buffer starts as the first gradient
                if s.momentum:
                    first = (self.steps == 1).to(p.dtype).view_as(on)
                    g = first * g + (1 - first) * (m * s.momentum + g)
                    m.copy_(torch.where(on.bool(), g, m))
                p.sub_(on * s.lr * g)
                continue
            b1, b2, eps = 0.9, 0.999, 1e-8
            m.copy_(torch.where(on.bool(), m * b1 + g * (1 - b1), m))
            v.copy_(torch.where(on.bool(), v * b2 + g * g * (1 - b2), v))
            t = self.steps.clamp(min=1).to(p.dtype).view_as(on)
            bc1, bc2 = 1 - b1**t, 1 - b2**t
            denom = v.sqrt() / bc2.sqrt() + eps
            p.sub_(on * (s.lr / bc1) * m / denom)


def fit_fused(models: list[nn.Module], trains: list[ImageSet], settings, seeds: list[int],
              device: torch.device) -> list[FitResult]:  # fmt: skip
    """Train ``models[k]`` on ``trains[k]`` with seed ``seeds[k]`` as :func:`.train.fit`
    would (same split, order, early stopping), all K in one batched step; the models' own
    weights end as the kept (best) ones."""
    for m in models:
        if (why := fusable(m)) is not None:
            raise ValueError(f"cannot fuse {type(m).__name__}: {why}")
    k, bs = len(models), settings.batch_size
    seed_everything(seeds[0])
    data = [_split(t, settings, s, device) for t, s in zip(trains, seeds)]
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    for m in models:
        m.to(device).train()
    params, _ = stack_module_state(models)
    params = {n: p.detach().clone().requires_grad_(True) for n, p in params.items()}
    base = copy.deepcopy(models[0]).to("meta")
    opt = _StackedOptimizer(params, settings, k)

    def loss_one(p, xb, yb, wb):
        logits = functional_call(base, (p,), (xb,))
        return (F.cross_entropy(logits, yb, reduction="none") * wb).sum() / wb.sum().clamp(min=1.0)

    batched_loss = vmap(loss_one)
    n = [len(d[1]) for d in data]
    running = [True] * k
    best = [(-1.0, None, 0)] * k  # (val_acc, weights, epoch)
    bad, status, epochs, last_loss = [0] * k, ["ok"] * k, [0] * k, [float("nan")] * k
    history: list[list[dict]] = [[] for _ in range(k)]
    for epoch in range(1, settings.max_epochs + 1):
        if not any(running):
            break
        t0 = time.perf_counter()
        perms = [torch.randperm(n[i], generator=gens[i]).to(device) if running[i] else None for i in range(k)]
        steps = max(math.ceil(n[i] / bs) for i in range(k) if running[i])
        loss_sum = torch.zeros(k, device=device)
        for s in range(steps):
            xs, ys, ws, active = [], [], [], []
            for i in range(k):
                idx = perms[i][s * bs : (s + 1) * bs] if running[i] else None
                got = 0 if idx is None else len(idx)
                pad = torch.zeros(bs, dtype=torch.long, device=device)  # padded rows weigh 0
                pad[:got] = idx if got else pad[:0]
                xs.append(data[i][0][pad])
                ys.append(data[i][1][pad])
                ws.append((torch.arange(bs, device=device) < got).float())
                active.append(got > 0)
            xb, yb, wb = torch.stack(xs), torch.stack(ys), torch.stack(ws)
            losses = batched_loss(params, xb, yb, wb)
            for p in params.values():
                p.grad = None
            losses.sum().backward()
            opt.step(torch.tensor(active))
            loss_sum += losses.detach() * wb.sum(1)
        train_s = time.perf_counter() - t0
        for i in range(k):
            if not running[i]:
                continue
            epochs[i] = epoch
            last_loss[i] = float(loss_sum[i]) / n[i]
            if not math.isfinite(last_loss[i]):
                status[i], running[i] = "diverged", False
                history[i].append(
                    {"epoch": epoch, "train_loss": last_loss[i], "val_acc": float("nan"), "train_s": train_s}
                )
                continue
            model = _model_of(models[i], params, i)
            val_acc = accuracy(model, data[i][2], data[i][3], device, settings.eval_batch_size)
            history[i].append({"epoch": epoch, "train_loss": last_loss[i], "val_acc": val_acc, "train_s": train_s})
            if val_acc > best[i][0] + settings.min_delta:
                best[i], bad[i] = (val_acc, {n_: p[i].detach().clone() for n_, p in params.items()}, epoch), 0
            else:
                bad[i] += 1
                running[i] = bad[i] < settings.patience
    out = []
    for i, m in enumerate(models):
        val_acc, weights, best_epoch = best[i]
        if weights is None:
            out.append(FitResult(status[i], epochs[i], float("nan"), float("nan"), history[i], 0, last_loss[i]))
            continue
        m.load_state_dict(weights)
        train_acc = accuracy(m, data[i][0], data[i][1], device, settings.eval_batch_size)
        out.append(FitResult(status[i], epochs[i], train_acc, val_acc, history[i], best_epoch, last_loss[i]))
    return out


def _model_of(template: nn.Module, params: dict[str, torch.Tensor], i: int) -> nn.Module:
    """Model ``i``'s current weights in ``template`` (for its validation)."""
    with torch.no_grad():
        template.load_state_dict({n: p[i].detach() for n, p in params.items()})
    return template


def fuse_size(spec) -> int:
    """K of ``execution.fuse`` (``auto``: 8 when trials get a GPU, else 1)."""
    k = spec.execution.fuse
    if k == "auto":
        return 8 if spec.resources.gpu > 0 else 1
    return int(k)


def fuse_groups(plans: list[dict], spec) -> list[dict]:
    """The Tune trials of ``plans`` (planned trial dicts): runs of up to K fusable trials of
    one architecture become one group ``{"trial_id": "f0000", "arch": ..., "fused": [trial
    dicts]}``; the rest stay as they are. Fusable: the standard recipe without options and
    an architecture :func:`fusable` accepts."""
    k = fuse_size(spec)
    if k <= 1:
        return list(plans)
    from .data import DATASETS
    from .models import build_model

    c, h, w = DATASETS.get(spec.dataset.name).shape
    num_classes = DATASETS.get(spec.dataset.name).num_classes
    ok_arch = {a: fusable(build_model(a, c, num_classes, (h, w))) is None for a in spec.architectures}
    alone, by_arch = [], {}
    for p in plans:
        if ok_arch.get(p["arch"]) and p.get("recipe", "standard") == "standard" and not p.get("recipe_options"):
            by_arch.setdefault(p["arch"], []).append(p)
        else:
            alone.append(p)
    groups = []
    for arch, members in by_arch.items():
        for i in range(0, len(members), k):
            chunk = members[i : i + k]
            if len(chunk) == 1:
                alone.append(chunk[0])
                continue
            groups.append({"trial_id": f"f{len(groups):04d}", "arch": arch, "fused": chunk})
    return groups + alone


def members(trial: dict) -> list[str]:
    """The planned trial ids a Tune trial's config holds (one, or a fused group's)."""
    return [m["trial_id"] for m in trial["fused"]] if "fused" in trial else [trial["trial_id"]]
