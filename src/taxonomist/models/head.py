"""`head`: a frozen sentence encoder with a trained linear or MLP head over cached embeddings.

Embeddings go through the on-disk cache, so re-training a head (new hyper-parameters, new
labels) never re-encodes the catalogue.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..encoders import Encoder, Role, build_cached_encoder, encoder_device
from ..errors import ModelError
from .base import Model, Progress
from .config import config_from_dict
from .loop import NetworkConfig, mlp_head, train_network


@dataclass(frozen=True)
class HeadConfig(NetworkConfig):
    """Args:
    encoder: registry name (minilm, e5) or a sentence-transformers directory.
    The rest: the network's (`NetworkConfig`).
    """

    owner: ClassVar[str] = "head"

    encoder: str = "minilm"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HeadConfig:
        return config_from_dict(cls, data)


class HeadModel(Model):
    kind = "head"
    config_class = HeadConfig

    def __init__(
        self, taxonomy, config: HeadConfig | None = None, encoder: Encoder | None = None
    ) -> None:
        super().__init__(taxonomy, config)
        self._encoder = encoder
        self._saved: Path | None = None  # the directory loaded from: encoder files live there
        self._expected: dict[str, Any] | None = None  # the encoder the manifest names
        self._net: Any = None
        self.best_epoch: int | None = None
        self._refit_epochs: int | None = None

    @property
    def encoder(self) -> Encoder:
        return self.lazy("_encoder", self._build_encoder)

    def _build_encoder(self) -> Encoder:
        spec = self.config.encoder
        encoder = build_cached_encoder(
            spec,
            saved=self._saved,
            cache=self.embedding_cache(),
            device=encoder_device(spec, self.device),
        )
        if self._expected is not None:
            check_encoder(encoder, self._expected, self._saved)
        return encoder

    def embed(self, texts: list[str]) -> np.ndarray:
        return self.encoder.encode(texts, role=Role.PRODUCT, batch_size=128)

    def _fit(self, texts, y, valid_texts, valid_y, progress: Progress | None):
        import torch

        torch.manual_seed(self.config.seed)
        x = torch.from_numpy(self.embed(texts))
        vx = torch.from_numpy(self.embed(valid_texts)) if valid_texts else None
        self._net = mlp_head(x.shape[1], len(self.labels), self.config.hidden, self.config.dropout)

        def forward(idx, training):
            return self._net(x[torch.from_numpy(idx)] if training else vx)

        history, best = train_network(
            self._net,
            forward,
            y,
            self.config,
            len(self.labels),
            valid_y=valid_y if vx is not None else None,
            epochs=self._refit_epochs,
            progress=progress,
        )
        if self._refit_epochs is None:  # a refit keeps the epoch count validation chose
            self.best_epoch = best
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
        return {
            "encoder": self.encoder.name,
            "embedding_dim": self.encoder.dim,
            "encoder_files": sorted(self.encoder.files()),
        }

    def _save(self, directory: Path) -> None:
        import shutil

        from safetensors.torch import save_file

        for name, source in self.encoder.files().items():  # e.g. the int8 graph
            shutil.copyfile(source, directory / name)
        save_file(
            {k: v.contiguous() for k, v in self._net.state_dict().items()},
            str(directory / "head.safetensors"),
        )

    def _load(self, directory: Path, manifest: dict[str, Any]) -> None:
        from safetensors.torch import load_file

        cfg = self.config
        self._saved = directory
        self._expected = {
            "encoder": manifest.get("encoder"),
            "embedding_dim": manifest.get("embedding_dim"),
        }
        self._net = mlp_head(
            int(manifest["embedding_dim"]), len(self.labels), cfg.hidden, cfg.dropout
        )
        self._net.load_state_dict(load_file(str(directory / "head.safetensors")))
        self._net.eval()


def check_encoder(encoder: Encoder, expected: dict[str, Any], directory: Path | None) -> None:
    """Refuse to run a head over vectors it was not trained on.

    The encoder is rebuilt from its name on load; a different sentence-transformers
    directory at that path, another ONNX export, or another width would feed the head
    vectors from a different space and give confident nonsense.
    """
    name, dim = expected.get("encoder"), expected.get("embedding_dim")
    if dim is not None and int(dim) != encoder.dim:
        raise ModelError(
            f"{directory}: the model was trained on {dim}-d vectors from {name!r}, but the "
            f"encoder built now gives {encoder.dim}-d vectors ({encoder.name!r})"
        )
    if name and name != encoder.name:
        raise ModelError(
            f"{directory}: the model was trained with encoder {name!r}, but {encoder.name!r} "
            "was built now; its vectors would not match the trained layers. Install the "
            "same encoder (or retrain)"
        )
