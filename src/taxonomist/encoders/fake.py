"""A deterministic, dependency-free encoder for tests and dry runs.

It hashes words and character trigrams into signed buckets, so texts that share words or
spellings get similar vectors: enough signal for zero-shot tests to be meaningful, in
microseconds and without torch.
"""

from __future__ import annotations

import hashlib
import re
import zlib

import numpy as np

from .base import Encoder, Role

_TOKEN = re.compile(r"\w+", re.UNICODE)


class FakeEncoder(Encoder):
    languages = frozenset({"*"})

    def __init__(self, dim: int = 256) -> None:
        self.dim = dim
        self.name = f"fake-hash-{dim}"

    def _features(self, text: str) -> list[str]:
        words = _TOKEN.findall(text.casefold())
        feats = [f"w:{w.rstrip('s')}" for w in words]
        for word in words:
            padded = f"#{word}#"
            feats.extend(f"c:{padded[i : i + 3]}" for i in range(len(padded) - 2))
        return feats

    def weights_digest(self) -> str | None:
        # no weights: the hashing scheme is the model, fixed by its name
        return hashlib.sha256(self.name.encode()).hexdigest()

    def _encode(self, texts: list[str], *, role: Role, batch_size: int, show_progress: bool):
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for feat in self._features(text):
                h = zlib.crc32(feat.encode("utf-8"))
                weight = 2.0 if feat.startswith("w:") else 1.0
                out[row, h % self.dim] += weight if (h >> 16) & 1 else -weight
        return out
