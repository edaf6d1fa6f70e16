"""The encoder interface: texts in, L2-normalised float32 vectors out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from enum import Enum
from pathlib import Path

import numpy as np

from .. import progress

# Texts encoded between two progress reports when someone listens (a few seconds' work).
PROGRESS_CHUNK = 2048


class Role(str, Enum):
    """What a text is. Asymmetric encoders (E5) embed the two sides differently."""

    PRODUCT = "product"
    CATEGORY = "category"


class Encoder(ABC):
    """A frozen text encoder.

    Subclasses set `name` (stable: it keys the embedding cache), `dim` and `languages`
    (ISO codes the model handles well, or {"*"} for multilingual ones) and implement `_encode`.
    """

    name: str = "encoder"
    dim: int = 0
    languages: frozenset[str] = frozenset({"en"})

    def encode(
        self,
        texts: Sequence[str],
        *,
        role: Role = Role.PRODUCT,
        batch_size: int = 64,
        show_progress: bool = False,
    ) -> np.ndarray:
        """Embed `texts` as a (len(texts), dim) float32 array of unit vectors.

        Example:
            >>> FakeEncoder().encode(["red shirt"]).shape
            (1, 256)
        """
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        texts = list(texts)
        chunk = max(batch_size, PROGRESS_CHUNK)
        if role is Role.PRODUCT and len(texts) > chunk and progress.active():
            # in pieces, so that a run encoding a whole catalogue can say how far it is
            parts = []
            for start in range(0, len(texts), chunk):
                piece = texts[start : start + chunk]
                parts.append(
                    self._encode(
                        piece, role=role, batch_size=batch_size, show_progress=show_progress
                    )
                )
                progress.report(f"encoding products ({self.name})", start + len(piece), len(texts))
            vectors = np.concatenate([np.asarray(p, dtype=np.float32) for p in parts])
        else:
            vectors = np.asarray(
                self._encode(texts, role=role, batch_size=batch_size, show_progress=show_progress),
                dtype=np.float32,
            )
        return normalize(vectors)

    def files(self) -> dict[str, Path]:
        """Files, by name, that fix what this encoder computes and that a model directory
        should carry, so the model encodes the same on any machine. Most encoders are fixed
        by their name and have none."""
        return {}

    def weights_digest(self) -> str | None:
        """A digest of the weights (and tokenizer) that fix what this encoder computes, or
        None when unknown (a hub name not yet downloaded). Anything computed with the
        encoder and stored beyond the process is keyed by it."""
        return None

    def handles(self, language: str) -> bool:
        return "*" in self.languages or language in self.languages

    @abstractmethod
    def _encode(
        self, texts: list[str], *, role: Role, batch_size: int, show_progress: bool
    ) -> np.ndarray: ...

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, dim={self.dim})"


def normalize(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)
