"""`head`: a frozen sentence encoder with a trained linear or MLP head over cached embeddings.

Embeddings go through the on-disk cache, so re-training a head (new hyper-parameters, new
labels) never re-encodes the catalogue.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..encoders import EmbeddingCache, Encoder, Role, build_encoder
from ..encoders.cache import CachedEncoder
from ..errors import ConfigError
from .base import Model, Progress
from .config import check_positive, config_from_dict


@dataclass(frozen=True)
class HeadConfig:
    """Args:
    encoder: registry name (minilm, e5) or a sentence-transformers directory.
    hidden: hidden units of the MLP head; 0 gives a linear (softmax regression) head.
    dropout, lr, weight_decay, epochs, batch_size: the usual; AdamW, cosine decay.
    patience: stop after this many epochs without a better validation loss.
    balance: class-weighted loss (inverse square-root frequency) for long tails.
    seed: for reproducible initialisation and shuffling.
    """

    encoder: str = "minilm"
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
            "head",
            lr=self.lr,
            epochs=self.epochs,
            batch_size=self.batch_size,
            patience=self.patience,
        )
        if self.hidden < 0 or not 0 <= self.dropout < 1:
            raise ConfigError("head.hidden must be >= 0 and head.dropout in [0, 1)")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HeadConfig:
        return config_from_dict(cls, data)


def _network(dim: int, classes: int, hidden: int, dropout: float):
    import torch.nn as nn

    if hidden == 0:
        return nn.Sequential(nn.Dropout(dropout), nn.Linear(dim, classes))
    return nn.Sequential(
        nn.Dropout(dropout),
        nn.Linear(dim, hidden),
        nn.GELU(),
        nn.Dropout(dropout),
        nn.Linear(hidden, classes),
    )


def class_weights(y: np.ndarray, classes: int) -> np.ndarray:
    """Inverse square-root frequency, mean 1: lifts the tail without drowning the head."""
    counts = np.bincount(y, minlength=classes).astype(np.float64)
    weights = 1.0 / np.sqrt(np.maximum(counts, 1))
    return (weights / weights[counts > 0].mean()).astype(np.float32)


class HeadModel(Model):
    kind = "head"
    config_class = HeadConfig

    def __init__(
        self, taxonomy, config: HeadConfig | None = None, encoder: Encoder | None = None
    ) -> None:
        super().__init__(taxonomy, config)
        self._encoder = encoder
        self._net: Any = None
        self.best_epoch: int | None = None
        self._refit_epochs: int | None = None

    @property
    def encoder(self) -> Encoder:
        if self._encoder is None:
            self._encoder = CachedEncoder(build_encoder(self.config.encoder), EmbeddingCache())
        return self._encoder

    def embed(self, texts: list[str]) -> np.ndarray:
        return self.encoder.encode(texts, role=Role.PRODUCT, batch_size=128)

    def _fit(self, texts, y, valid_texts, valid_y, progress: Progress | None):
        import torch

        cfg = self.config
        torch.manual_seed(cfg.seed)
        rng = np.random.default_rng(cfg.seed)
        x = torch.from_numpy(self.embed(texts))
        targets = torch.from_numpy(y)
        vx = torch.from_numpy(self.embed(valid_texts)) if valid_texts else None
        vt = torch.from_numpy(valid_y) if valid_texts else None
        classes = len(self.labels)
        self._net = _network(x.shape[1], classes, cfg.hidden, cfg.dropout)
        weight = torch.from_numpy(class_weights(y, classes)) if cfg.balance else None
        loss_fn = torch.nn.CrossEntropyLoss(weight=weight)
        opt = torch.optim.AdamW(self._net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        steps = (self._refit_epochs or cfg.epochs) * (
            (len(x) + cfg.batch_size - 1) // cfg.batch_size
        )
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=cfg.lr, total_steps=steps, pct_start=0.1
        )
        history: list[dict[str, float]] = []
        best_loss, best_state, stale = float("inf"), None, 0
        epochs = self._refit_epochs or cfg.epochs
        for epoch in range(1, epochs + 1):
            self._net.train()
            order = rng.permutation(len(x))
            total = 0.0
            for start in range(0, len(x), cfg.batch_size):
                idx = torch.from_numpy(order[start : start + cfg.batch_size])
                loss = loss_fn(self._net(x[idx]), targets[idx])
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self._net.parameters(), 1.0)
                opt.step()
                sched.step()
                total += loss.item() * len(idx)
            row = {"epoch": epoch, "train_loss": total / len(x)}
            if vx is not None and vt is not None:
                self._net.eval()
                with torch.no_grad():
                    logits = self._net(vx)
                    row["valid_loss"] = float(torch.nn.functional.cross_entropy(logits, vt))
                    row["valid_accuracy"] = float((logits.argmax(1) == vt).float().mean())
                if row["valid_loss"] < best_loss - 1e-4:
                    best_loss, stale, self.best_epoch = row["valid_loss"], 0, epoch
                    best_state = {k: v.clone() for k, v in self._net.state_dict().items()}
                else:
                    stale += 1
            history.append(row)
            if progress:
                progress("epoch", epoch, epochs)
            if stale >= cfg.patience:
                break
        if best_state is not None:
            self._net.load_state_dict(best_state)
        self._net.eval()
        return history

    def _refit(self, texts, y, progress):
        # as many epochs as validation found best; no early stopping without a validation set
        self._refit_epochs = self.best_epoch or self.config.epochs
        try:
            self._fit(texts, y, None, None, progress)
        finally:
            self._refit_epochs = None

    def _logits(self, texts):
        import torch

        with torch.no_grad():
            return self._net(torch.from_numpy(self.embed(texts))).numpy().astype(np.float64)

    def _manifest_extra(self) -> dict[str, Any]:
        return {"encoder": self.encoder.name, "embedding_dim": self.encoder.dim}

    def _save(self, directory: Path) -> None:
        from safetensors.torch import save_file

        save_file(
            {k: v.contiguous() for k, v in self._net.state_dict().items()},
            str(directory / "head.safetensors"),
        )

    def _load(self, directory: Path, manifest: dict[str, Any]) -> None:
        from safetensors.torch import load_file

        cfg = self.config
        self._net = _network(
            int(manifest["embedding_dim"]), len(self.labels), cfg.hidden, cfg.dropout
        )
        self._net.load_state_dict(load_file(str(directory / "head.safetensors")))
        self._net.eval()
