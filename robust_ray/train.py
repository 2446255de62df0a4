"""Train to convergence and evaluate, with whole datasets as tensors on the device.

No DataLoader and no per-sample Python: the training set is one float32 tensor on the
device, batches are index slices of a seeded permutation, evaluation runs in large batches
under inference mode, in channels-last layout; on a GPU, with bfloat16 autocast. "Until
convergence" (000 §2.1) is early stopping on a held-out, stratified validation split with
patience, capped by ``max_epochs``; the best epoch's weights are kept. Seeds for Python,
NumPy and torch are fixed from the trial seed (000 §2.1), so a rerun on the same hardware
gives the same weights and numbers.

What a batch is trained on is the recipe's *objective* (see :mod:`.recipes`); the loop
itself is shared by every recipe.
"""

from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .data import ImageSet, stratified_sample, to_float
from .models import training_loss
from .seeding import seed_everything

# (model, images, targets) -> scalar loss to minimise on this batch
Objective = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class FitResult:
    status: str  # "ok", or "diverged": a non-finite epoch loss stopped training
    epochs: int  # epochs run (including the one that diverged)
    train_acc: float  # training-fit accuracy of the kept weights on the training split
    val_acc: float  # validation accuracy of the kept weights
    # one dict per epoch, as reported: epoch, train_loss, val_acc, train_s (seconds of
    # training steps in that epoch, validation excluded)
    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0  # epoch whose weights were kept; 0: none (diverged in epoch 1)
    train_loss: float = float("nan")  # mean training loss of the last epoch run

    @property
    def has_weights(self) -> bool:
        """False when training diverged before any epoch finished: the model's weights
        are then non-finite and anything evaluated with them is meaningless."""
        return self.best_epoch > 0


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def make_optimizer(model: nn.Module, settings) -> torch.optim.Optimizer:
    # one fused kernel per step on CUDA, where small models are launch-bound
    fused = {"fused": True} if next(model.parameters()).is_cuda else {}
    if settings.optimizer == "sgd":
        return torch.optim.SGD(
            model.parameters(), lr=settings.lr, momentum=settings.momentum, weight_decay=settings.weight_decay, **fused
        )
    return torch.optim.Adam(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay, **fused)


def autocast(device: torch.device, enabled: bool):
    """bfloat16 autocast on CUDA (no loss scaling needed); a no-op elsewhere."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled and device.type == "cuda")


def layout(t: torch.Tensor) -> torch.Tensor:
    """Image batches in channels-last: cuDNN's convolutions are fastest in it (with bf16),
    and on CPU oneDNN's convolutions and max-pooling are too (LeNet-5 evaluates ~1.7x
    faster on one core); a no-op for anything but a 4-D tensor."""
    if t.dim() == 4:
        return t.contiguous(memory_format=torch.channels_last)
    return t


def prepare_model(model: nn.Module, device: torch.device) -> nn.Module:
    return model.to(device).to(memory_format=torch.channels_last)


# On CPU, activations of a few hundred images stay in cache: LeNet-5 evaluates ~1.5-2x
# faster in batches of 512 than of 4096 (the GPU-sized default of eval_batch_size).
CPU_EVAL_BATCH = 512


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
    stored uint8/float16 (moved and converted per batch) or already float32 on the device.
    On CPU, batches are capped at :data:`CPU_EVAL_BATCH` (predictions do not depend on it)."""
    model.eval()
    if device.type == "cpu":
        batch_size = min(batch_size, CPU_EVAL_BATCH)
    y = torch.as_tensor(labels, device=device)
    out = torch.empty(len(y), dtype=torch.bool, device=device)
    for s in range(0, len(y), batch_size):
        xb = layout(to_float(images[s : s + batch_size], device))
        with autocast(device, amp):
            out[s : s + batch_size] = model(xb).argmax(1) == y[s : s + batch_size]
    return out


def accuracy(model, images, labels, device, batch_size=4096, amp=False) -> float:
    if len(labels) == 0:
        return float("nan")
    # the exact ratio in float64 (a float32 mean reads 0.960999995470047 for 961/1000)
    return int(correct_counts(model, images, labels, device, batch_size, amp).sum()) / len(labels)


def fit(
    model: nn.Module,
    train: ImageSet,
    settings,
    seed: int,
    device: torch.device,
    on_epoch: Callable[[dict], None] | None = None,
    objective: Objective = training_loss,
) -> FitResult:
    """Train ``model`` on ``train`` until the validation accuracy stops improving for
    ``settings.patience`` epochs (or ``max_epochs``), minimising ``objective`` per batch.

    A non-finite epoch loss stops training with status ``diverged``: that epoch is still
    reported (its loss, NaN accuracy) and the best weights seen before it are restored;
    with none (divergence in epoch 1) the accuracies are NaN. It never raises for it."""
    seed_everything(seed)
    if device.type == "cuda":
        # reproducible convolutions: cuDNN's autotuner and some of its kernels are not
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
        # and deterministic kernels elsewhere (scatter, index_add, cuBLAS with a fixed
        # workspace); ops with none on CUDA (adaptive pooling's backward, in ResNets) warn
        # once instead of failing: their reruns can differ in the last bits
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
    val_idx = stratified_sample(train.labels, settings.val_fraction, seed)
    mask = np.ones(len(train), bool)
    mask[val_idx] = False
    x = layout(to_float(train.images[mask], device))
    y = torch.as_tensor(train.labels[mask], device=device)
    xv = layout(to_float(train.images[val_idx], device))
    yv = torch.as_tensor(train.labels[val_idx], device=device)

    prepare_model(model, device)
    opt = make_optimizer(model, settings)
    gen = torch.Generator().manual_seed(seed)
    amp = settings.amp and device.type == "cuda"
    best_acc, best_state, best_epoch, bad, status = -1.0, None, 0, 0, "ok"
    history: list[dict] = []
    epoch, train_loss = 0, float("nan")
    for epoch in range(1, settings.max_epochs + 1):
        t0 = time.perf_counter()
        model.train()
        perm = torch.randperm(len(y), generator=gen).to(device)
        loss_sum = torch.zeros((), device=device)
        for s in range(0, len(perm), settings.batch_size):
            idx = perm[s : s + settings.batch_size]
            with autocast(device, amp):
                loss = objective(model, layout(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.detach().float() * len(idx)
        train_loss = float(loss_sum) / len(y)  # one sync per epoch, not per step
        train_s = time.perf_counter() - t0
        if not math.isfinite(train_loss):
            status = "diverged"
            history.append({"epoch": epoch, "train_loss": train_loss, "val_acc": float("nan"), "train_s": train_s})
            if on_epoch:
                on_epoch(history[-1])
            break
        val_acc = accuracy(model, xv, yv, device, settings.eval_batch_size, amp)
        history.append({"epoch": epoch, "train_loss": train_loss, "val_acc": val_acc, "train_s": train_s})
        if on_epoch:
            on_epoch(history[-1])
        if val_acc > best_acc + settings.min_delta:
            best_acc, best_epoch, bad = val_acc, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            bad += 1
            if bad >= settings.patience:
                break
    if best_state is None:
        return FitResult(status, epoch, float("nan"), float("nan"), history, 0, train_loss)
    model.load_state_dict(best_state)
    train_acc = accuracy(model, x, y, device, settings.eval_batch_size, amp)
    return FitResult(status, epoch, train_acc, best_acc, history, best_epoch, train_loss)
