"""One encoder per language, chosen per product, for catalogues that mix Chinese and English.

English sentence encoders fail on Chinese, and the multilingual ones are slower and weaker on
English, so a mixed catalogue gets each product embedded by the encoder for its language
(`detect_language`). The vectors live in separate blocks of one longer vector (the other
blocks zero), so a head over them learns one set of weights per encoder instead of mixing
two unrelated embedding spaces.

Spec: `by-language:zh=e5,other=minilm-int8` (`other` is every language not named).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..errors import ConfigError
from .base import Encoder, Role
from .language import detect_language

PREFIX = "by-language:"


def parse_routes(spec: str) -> tuple[dict[str, str], str]:
    """`by-language:zh=e5,other=minilm` -> ({"zh": "e5"}, "minilm")."""
    routes: dict[str, str] = {}
    for part in spec[len(PREFIX) :].split(","):
        language, sep, name = part.partition("=")
        if not sep or not language.strip() or not name.strip():
            raise ConfigError(
                f"encoder spec '{spec}': each route is language=encoder, "
                "e.g. by-language:zh=e5,other=minilm"
            )
        routes[language.strip().lower()] = name.strip()
    if "other" not in routes or len(routes) < 2:
        raise ConfigError(
            f"encoder spec '{spec}' needs 'other=ENCODER' and at least one language route"
        )
    return routes, routes.pop("other")


class LanguageRoutedEncoder(Encoder):
    """Embeds each text with the encoder for its language, into that encoder's block.

    Encoders are built on first use, so an all-English batch never loads the Chinese one.
    """

    languages = frozenset({"*"})

    def __init__(
        self,
        routes: dict[str, str],
        fallback: str,
        build: Callable[[str], Encoder],
        dims: dict[str, int],
    ) -> None:
        self._order = [*routes.values(), fallback]
        if len(set(self._order)) != len(self._order):
            raise ConfigError("by-language: each language needs a different encoder")
        self._routes, self._fallback = routes, fallback
        self._build = build
        self._built: dict[str, Encoder] = {}
        self._offsets: dict[str, int] = {}
        offset = 0
        for name in self._order:
            self._offsets[name] = offset
            offset += dims[name]
        self._dims = dims
        self.dim = offset
        self.name = PREFIX + ",".join(
            [*(f"{lang}={enc}" for lang, enc in routes.items()), f"other={fallback}"]
        )

    def encoder(self, name: str) -> Encoder:
        if name not in self._built:
            self._built[name] = self._build(name)
        return self._built[name]

    def encode(self, texts, *, role=Role.PRODUCT, batch_size=64, show_progress=False):
        texts = list(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        groups: dict[str, list[int]] = {}
        for i, text in enumerate(texts):
            name = self._routes.get(detect_language(text), self._fallback)
            groups.setdefault(name, []).append(i)
        for name, rows in groups.items():
            vectors = self.encoder(name).encode(
                [texts[i] for i in rows], role=role, batch_size=batch_size
            )
            start = self._offsets[name]
            out[rows, start : start + self._dims[name]] = vectors
        return out

    def files(self):
        # every route, built or not: a saved model must encode alike wherever it is loaded
        files = {}
        for name in self._order:
            files.update(self.encoder(name).files())
        return files

    def _encode(self, texts, *, role, batch_size, show_progress):  # pragma: no cover
        raise NotImplementedError("LanguageRoutedEncoder.encode is overridden")
