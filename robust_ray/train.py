"""Train to convergence and evaluate, with whole datasets as tensors on the device.

No DataLoader and no per-sample Python: the training set is one float32 tensor on the
device, batches are index slices of a seeded permutation, evaluation runs in large batches
under inference mode. "Until convergence" (000 §2.1) is early stopping on a held-out,
stratified validation split with patience, capped by ``max_epochs``; the best epoch's
weights are kept.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .data import ImageSet, stratified_sample, to_float


@dataclass
class FitResult:
    status: str  # "ok" or "diverged"
    epochs: int
    train_acc: float
    val_acc: float
    history: list[dict] = field(default_factory=list)


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def make_optimizer(model: nn.Module, settings) -> torch.optim.Optimizer:
    if settings.optimizer == "sgd":
        return torch.optim.SGD(
            model.parameters(), lr=settings.lr, momentum=settings.momentum, weight_decay=settings.weight_decay
        )
    return torch.optim.Adam(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)


def _autocast(device: torch.device, enabled: bool):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled and device.type == "cuda")


@torch.inference_mode()
def correct_counts(
    model: nn.Module,
    images: np.ndarray | torch.Tensor,
    labels: np.ndarray | torch.Tensor,
    device: torch.device,
    batch_size: int = 4096,
    amp: bool = False,
) -> torch.Tensor:
    """Bool [N] on the device: is the model's prediction for each image right? Images may be
    stored uint8/float16 (converted per batch) or already float32 on the device."""
    model.eval()
    y = torch.as_tensor(labels, device=device)
    out = torch.empty(len(y), dtype=torch.bool, device=device)
    for s in range(0, len(y), batch_size):
        xb = to_float(images[s : s + batch_size], device)
        with _autocast(device, amp):
            out[s : s + batch_size] = model(xb).argmax(1) == y[s : s + batch_size]
    return out


def accuracy(model, images, labels, device, batch_size=4096, amp=False) -> float:
    if len(labels) == 0:
        return float("nan")
    return float(correct_counts(model, images, labels, device, batch_size, amp).float().mean())


def fit(
    model: nn.Module,
    train: ImageSet,
    settings,
    seed: int,
    device: torch.device,
    on_epoch: Callable[[dict], None] | None = None,
) -> FitResult:
    """Train ``model`` on ``train`` until the validation accuracy stops improving for
    ``settings.patience`` epochs (or ``max_epochs``). A non-finite loss stops training with
    status ``diverged``; the best weights seen before it are restored."""
    val_idx = stratified_sample(train.labels, settings.val_fraction, seed)
    mask = np.ones(len(train), bool)
    mask[val_idx] = False
    x = to_float(train.images[mask], device)
    y = torch.as_tensor(train.labels[mask], device=device)
    xv = to_float(train.images[val_idx], device)
    yv = torch.as_tensor(train.labels[val_idx], device=device)

    model.to(device)
    opt = make_optimizer(model, settings)
    gen = torch.Generator().manual_seed(seed)
    amp = settings.amp and device.type == "cuda"
    best_acc, best_state, bad, status, epochs = -1.0, None, 0, "ok", 0
    history: list[dict] = []
    for epoch in range(1, settings.max_epochs + 1):
        model.train()
        perm = torch.randperm(len(y), generator=gen).to(device)
        loss_sum = torch.zeros((), device=device)
        for s in range(0, len(perm), settings.batch_size):
            idx = perm[s : s + settings.batch_size]
            with _autocast(device, amp):
                loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.detach() * len(idx)
        train_loss = float(loss_sum) / len(y)  # one sync per epoch, not per step
        epochs = epoch
        if not math.isfinite(train_loss):
            status = "diverged"
            break
        val_acc = accuracy(model, xv, yv, device, settings.eval_batch_size, amp)
        history.append({"epoch": epoch, "train_loss": train_loss, "val_acc": val_acc})
        if on_epoch:
            on_epoch(history[-1])
        if val_acc > best_acc + settings.min_delta:
            best_acc, best_state, bad = val_acc, copy.deepcopy(model.state_dict()), 0
        else:
            bad += 1
            if bad >= settings.patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    train_acc = accuracy(model, x, y, device, settings.eval_batch_size, amp)
    val_acc = best_acc if best_state is not None else float("nan")
    return FitResult(status, epochs, train_acc, val_acc, history)
