"""Encoders behind one interface, built by name through a registry with lazy heavy imports.

Names: `minilm` (default; packaged all-MiniLM-L6-v2), `minilm-int8` (the same model through
ONNX Runtime with int8 weights: about twice as fast on a CPU, vectors close but not equal),
`e5` (multilingual E5-small, Chinese included), `use` (multilingual USE v3), `fake` or
`fake-DIM` (deterministic hashing, for tests), `auto` (by
script: MiniLM for English, USE for Chinese), or any sentence-transformers directory or hub
name.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from ..errors import ConfigError
from .base import Encoder, Role, normalize
from .cache import CachedEncoder, EmbeddingCache, open_cache
from .fake import FakeEncoder
from .language import detect_language, language_shares

__all__ = [
    "CachedEncoder",
    "EmbeddingCache",
    "Encoder",
    "EncoderSet",
    "FakeEncoder",
    "Role",
    "build_cached_encoder",
    "build_encoder",
    "build_encoder_set",
    "detect_language",
    "encoder_device",
    "language_shares",
    "normalize",
    "open_cache",
]


def _minilm(device: str, saved: Path | None) -> Encoder:
    from .sentence import packaged_minilm

    return packaged_minilm(device)


def _minilm_int8(device: str, saved: Path | None) -> Encoder:
    from .onnx import OnnxEncoder
    from .sentence import PACKAGED_MINILM, packaged_minilm_path

    if device != "cpu":
        raise ConfigError("minilm-int8 runs on the CPU; use 'minilm' on an accelerator")
    # (callers pass `encoder_device(spec, device)`, which keeps this one on the CPU)
    graph = saved / "encoder.onnx" if saved and (saved / "encoder.onnx").is_file() else None
    return OnnxEncoder(packaged_minilm_path(), name=PACKAGED_MINILM + "@onnx-int8", graph=graph)


def _e5(device: str, saved: Path | None) -> Encoder:
    from .e5 import E5Encoder

    return E5Encoder()


def _use(device: str, saved: Path | None) -> Encoder:
    from .use import UseEncoder

    return UseEncoder()


def _fake(device: str, saved: Path | None) -> Encoder:
    return FakeEncoder()


REGISTRY: dict[str, Callable[[str, Path | None], Encoder]] = {
    "minilm": _minilm,
    "minilm-int8": _minilm_int8,
    "e5": _e5,
    "use": _use,
    "fake": _fake,
}
_ALIASES = {
    "default": "minilm",
    "multilingual": "e5",
    "all-minilm-l6-v2": "minilm",
    "use-multilingual": "use",
}


# The encoder `auto` gives Chinese text in zero-shot: USE-multilingual against the taxonomy's
# Chinese category names. On zh-retail's 400 development rows (benchmarks/zeroshot_quality.py
# --part dev) it put 0.743 of the products under an acceptable Shopify vertical where E5-small
# put 0.688 (the first mapping; docs/benchmarks.md), and it embeds 6-12x faster.
AUTO_CHINESE = "use"

# dimensions known without loading a model (a language-routed encoder lays out its blocks)
_DIMS = {"minilm": 384, "minilm-int8": 384, "e5": 384, "use": 512, "fake": 256}


def _routed(
    spec: str, build: Callable[[str], Encoder], *, device: str, saved: Path | None
) -> Encoder:
    from .routed import LanguageRoutedEncoder, parse_routes

    routes, fallback = parse_routes(spec)
    names = [*routes.values(), fallback]
    dims = {}
    for name in names:
        key = _ALIASES.get(name.lower(), name.lower())
        dims[name] = _DIMS[key] if key in _DIMS else build(name).dim
    return LanguageRoutedEncoder(routes, fallback, build, dims)


# Encoders that never run on torch: an accelerator would not speed them up. `minilm-int8`
# is ONNX Runtime's CPU int8 kernels (its vectors are the CPU's by design), E5 a C engine,
# USE numpy.
CPU_ONLY = frozenset({"minilm-int8", "e5", "use", "fake"})


def encoder_device(spec: str, device: str | None) -> str:
    """Where the encoder `spec` runs when a model is asked to run on `device`.

    torch encoders (MiniLM, any sentence-transformers directory) follow `device` ("auto":
    a CUDA GPU when torch sees one); the CPU-only ones stay on the CPU whatever is asked, so
    one `--device cuda` serves a whole ensemble whose members mix the two.

    Raises:
        ConfigError: an unknown or unavailable device (see `taxonomist.devices`).
    """
    from ..devices import check_device, resolve_device

    key = _ALIASES.get(spec.lower(), spec.lower())
    if key in CPU_ONLY:
        check_device(device)  # a misspelt device is still an error
        return "cpu"
    return resolve_device(device)


def build_encoder(spec: str, *, device: str = "cpu", saved: Path | None = None) -> Encoder:
    """One encoder from a registry name, a local sentence-transformers directory or hub name,
    or `by-language:zh=e5,other=minilm` (one encoder per product language, see
    `encoders.routed`).

    `saved`: a model directory holding the files an encoder of this name saved there
    (`Encoder.files`); the encoder then uses them instead of rebuilding them.
    """
    if spec.lower().startswith("by-language:"):
        return _routed(
            spec,
            lambda name: build_encoder(name, device=device, saved=saved),
            device=device,
            saved=saved,
        )
    key = _ALIASES.get(spec.lower(), spec.lower())
    if key in REGISTRY:
        return REGISTRY[key](device, saved)
    if key.startswith("fake-") and key[5:].isdigit():
        return FakeEncoder(dim=int(key[5:]))
    if key == "auto":
        raise ConfigError("'auto' chooses per text; use build_encoder_set('auto')")
    if Path(spec).exists() or "/" in spec:
        from .sentence import SentenceTransformerEncoder

        return SentenceTransformerEncoder(spec, device=device)
    raise ConfigError(
        f"unknown encoder '{spec}'; choose one of {', '.join([*REGISTRY, 'auto'])}, or give a "
        "sentence-transformers directory"
    )


def build_cached_encoder(
    spec: str,
    *,
    cache: EmbeddingCache | None = None,
    device: str = "cpu",
    saved: Path | None = None,
) -> Encoder:
    """`build_encoder` behind an on-disk embedding cache (none when `cache` is None), for
    trained kinds that re-read the same catalogue across fits."""
    if spec.lower().startswith("by-language:"):
        # each route is cached under its own encoder's name, shared with single-encoder use
        def build(name: str) -> Encoder:
            inner = build_encoder(name, device=device, saved=saved)
            return CachedEncoder(inner, cache) if cache is not None else inner

        return _routed(spec, build, device=device, saved=saved)
    encoder = build_encoder(spec, device=device, saved=saved)
    return CachedEncoder(encoder, cache) if cache is not None else encoder


class EncoderSet:
    """Chooses an encoder per text language. A single encoder serves every language."""

    def __init__(self, by_language: dict[str, Encoder], fallback: Encoder) -> None:
        self.by_language = by_language
        self.fallback = fallback

    def for_language(self, language: str) -> Encoder:
        return self.by_language.get(language, self.fallback)

    @property
    def names(self) -> list[str]:
        return sorted({e.name for e in [*self.by_language.values(), self.fallback]})


def build_encoder_set(
    spec: str, *, device: str = "cpu", cache: EmbeddingCache | None = None
) -> EncoderSet:
    """Build the encoders for `spec`; `auto` pairs MiniLM (English) with USE (Chinese).

    The multilingual encoder is loaded only when a Chinese text is first seen.
    """

    def wrap(enc: Encoder) -> Encoder:
        return CachedEncoder(enc, cache) if cache is not None else enc

    if spec.lower() == "auto":
        return _LazyAutoSet(device, wrap)
    encoder = wrap(build_encoder(spec, device=encoder_device(spec, device)))
    return EncoderSet({}, encoder)


class _LazyAutoSet(EncoderSet):
    def __init__(self, device: str, wrap: Callable[[Encoder], Encoder]) -> None:
        self._device = device
        self._wrap = wrap
        self._loaded: dict[str, Encoder] = {}
        self._lock = threading.Lock()
        super().__init__({}, fallback=None)  # type: ignore[arg-type]

    def for_language(self, language: str) -> Encoder:
        key = AUTO_CHINESE if language == "zh" else "minilm"
        if key not in self._loaded:
            with self._lock:  # two threads seeing their first Chinese text load it once
                if key not in self._loaded:
                    self._loaded[key] = self._wrap(
                        build_encoder(key, device=encoder_device(key, self._device))
                    )
        return self._loaded[key]

    @property
    def names(self) -> list[str]:
        return sorted(e.name for e in self._loaded.values()) or ["auto"]
