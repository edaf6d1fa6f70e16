"""One training loop for the small torch networks the kinds train over cached features.

AdamW with one-cycle decay (`one_cycle`, valid for any number of steps), gradient clipping,
optional class weights, early stopping on the validation loss with the best weights restored.
Each kind says only how a batch of row indices becomes logits, so feature layouts (one
embedding, two modalities with masks, augmented pixels) stay in the kind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..errors import ConfigError
from .base import Progress
from .config import check_positive


@dataclass(frozen=True)
class NetworkConfig:
    """Options every kind that trains a small network over cached features shares; each
    kind's config extends it (and may change a default).

    Args:
        hidden: hidden units of the MLP; 0 gives a linear (softmax regression) layer.
        dropout, lr, weight_decay, epochs, batch_size: the usual; AdamW, one-cycle decay.
        patience: stop after this many epochs without a better validation loss.
        balance: class-weighted loss (inverse square-root frequency) for long tails.
        seed: for reproducible initialisation and shuffling.
    """

    owner: ClassVar[str] = "network"  # names the kind in error messages

    hidden: int = 512
    dropout: float = 0.2
    lr: float = 2e-3
    weight_decay: float = 1e-4
    epochs: int = 30
    batch_size: int = 256
    patience: int = 4
    balance: bool = False
    seed: int = 13

    def __post_init__(self) -> None:
        check_positive(
            self.owner, lr=self.lr, epochs=self.epochs, batch_size=self.batch_size,
            patience=self.patience,
        )  # fmt: skip
        if self.hidden < 0 or not 0 <= self.dropout < 1:
            raise ConfigError(
                f"{self.owner}.hidden must be >= 0 and {self.owner}.dropout in [0, 1)"
            )


def mlp_head(dim: int, classes: int, hidden: int, dropout: float) -> Any:
    """The classifier over a feature vector: an MLP, or softmax regression when hidden=0."""
    import torch.nn as nn

    if hidden == 0:
        return nn.Sequential(nn.Dropout(dropout), nn.Linear(dim, classes))
    return nn.Sequential(
        nn.Dropout(dropout), nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout),
        nn.Linear(hidden, classes),
    )  # fmt: skip


def class_weights(y: np.ndarray, classes: int) -> np.ndarray:
    """Inverse square-root frequency, mean 1: lifts the tail without drowning the head."""
    counts = np.bincount(y, minlength=classes).astype(np.float64)
    weights = 1.0 / np.sqrt(np.maximum(counts, 1))
    return (weights / weights[counts > 0].mean()).astype(np.float32)


class EarlyStopping:
    """Keeps the best weights seen on the validation loss and says when to stop.

    `patience` means the same for every kind that trains a network: stop once this many
    epochs in a row have not lowered the validation loss (by more than `min_delta`).
    """

    def __init__(self, patience: int, min_delta: float = 1e-4) -> None:
        self.patience = patience
        self.min_delta = min_delta
        self.best_loss = float("inf")
        self.best_epoch: int | None = None
        self.best_state: dict[str, Any] | None = None
        self.stale = 0

    def update(self, epoch: int, loss: float, net: Any) -> None:
        """Record one epoch's validation loss; copy the weights when it is the best yet."""
        if loss < self.best_loss - self.min_delta:
            self.best_loss, self.best_epoch, self.stale = loss, epoch, 0
            self.best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        else:
            self.stale += 1

    @property
    def should_stop(self) -> bool:
        return self.stale >= self.patience

    def restore(self, net: Any) -> None:
        """Put the best weights back (no-op when no validation loss was ever recorded)."""
        if self.best_state is not None:
            net.load_state_dict(self.best_state)


# OneCycleLR's defaults: the rate starts at max_lr / 25 and ends at max_lr / 25 / 1e4
WARMUP_FRACTION = 0.1
FINAL_FRACTION = 1 / (25 * 1e4)


def one_cycle(opt: Any, max_lr: float, total_steps: int) -> Any:
    """The learning-rate schedule for `total_steps` optimiser steps (any count >= 1).

    torch's OneCycleLR, whenever its warm-up spans more than one step. With
    `WARMUP_FRACTION * total_steps <= 1` (80 rows at batch size 256 for 10 epochs, say) it
    breaks: at exactly 1 (10 steps) it divides by zero, below it skips the warm-up and gives
    the first step the final rate (a 1-step run trains at max_lr / 250000, i.e. not at all).
    Such short runs get one-cycle's decay alone: cosine from `max_lr` towards the final rate,
    sampled so that every step, the last included, still moves the weights.
    """
    import math

    import torch

    if WARMUP_FRACTION * total_steps > 1:
        return torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=max_lr, total_steps=total_steps, pct_start=WARMUP_FRACTION
        )
    for group in opt.param_groups:
        group["lr"] = max_lr

    def factor(step: int) -> float:
        done = min(step, total_steps) / total_steps
        return FINAL_FRACTION + (1 - FINAL_FRACTION) * (1 + math.cos(math.pi * done)) / 2

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


def train_network(
    net: Any,
    forward: Callable[[np.ndarray, bool], Any],
    y: np.ndarray,
    settings: NetworkConfig,
    classes: int,
    *,
    valid_y: np.ndarray | None = None,
    epochs: int | None = None,
    progress: Progress | None = None,
) -> tuple[list[dict[str, float]], int | None]:
    """Train `net` in place; return the per-epoch history and the best validation epoch.

    `forward(indices, training)` returns logits for those rows: of the training set when
    `training`, else (indices=None) for the whole validation set.
    """
    import torch

    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    targets = torch.from_numpy(y)
    weight = torch.from_numpy(class_weights(y, classes)) if settings.balance else None
    loss_fn = torch.nn.CrossEntropyLoss(weight=weight)
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)
    epochs = epochs or settings.epochs
    per_epoch = (len(y) + settings.batch_size - 1) // settings.batch_size
    sched = one_cycle(opt, settings.lr, epochs * per_epoch)
    vt = torch.from_numpy(valid_y) if valid_y is not None and len(valid_y) else None
    history: list[dict[str, float]] = []
    stopper = EarlyStopping(settings.patience)
    for epoch in range(1, epochs + 1):
        net.train()
        order = rng.permutation(len(y))
        total = 0.0
        for start in range(0, len(y), settings.batch_size):
            idx = order[start : start + settings.batch_size]
            loss = loss_fn(forward(idx, True), targets[torch.from_numpy(idx)])
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        row = {"epoch": epoch, "train_loss": total / len(y)}
        if vt is not None:
            net.eval()
            with torch.no_grad():
                logits = forward(None, False)  # type: ignore[arg-type]
                row["valid_loss"] = float(torch.nn.functional.cross_entropy(logits, vt))
                row["valid_accuracy"] = float((logits.argmax(1) == vt).float().mean())
            stopper.update(epoch, row["valid_loss"], net)
        history.append(row)
        if progress:
            progress("epoch", epoch, epochs)
        if stopper.should_stop:
            break
    stopper.restore(net)
    net.eval()
    return history, stopper.best_epoch
