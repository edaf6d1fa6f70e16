"""On-disk embedding cache keyed by (encoder, role, text), so repeated runs do not re-encode.

SQLite rather than a pickle/npz blob: safe to open, concurrent readers, incremental writes.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

import numpy as np

from .base import Encoder, Role

logger = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    env = os.environ.get("TAXONOMIST_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "taxonomist"


_ENABLED: ContextVar[bool] = ContextVar("taxonomist_embedding_cache", default=True)


def cache_enabled() -> bool:
    """Whether encoders built now go through the on-disk cache: not inside `caching(False)`,
    nor with TAXONOMIST_NO_CACHE=1 in the environment."""
    return _ENABLED.get() and os.environ.get("TAXONOMIST_NO_CACHE") != "1"


@contextmanager
def caching(enabled: bool) -> Iterator[None]:
    """Build encoders with (True) or without (False) the on-disk cache inside this block.

    A context variable, not a global: a batch job turning the cache off leaves a server's
    other requests in the same process alone.
    """
    token = _ENABLED.set(enabled)
    try:
        yield
    finally:
        _ENABLED.reset(token)


class EmbeddingCache:
    """A key -> float32 vector store in one SQLite file."""

    def __init__(self, directory: str | Path | None = None) -> None:
        self.path = Path(directory or default_cache_dir()) / "embeddings.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS emb (key TEXT PRIMARY KEY, vec BLOB)")

    @staticmethod
    def key(encoder_name: str, role: Role, text: str) -> str:
        return hashlib.sha1(f"{encoder_name}\x00{role.value}\x00{text}".encode()).hexdigest()

    def get_many(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        for start in range(0, len(keys), 500):
            chunk = list(keys[start : start + 500])
            marks = ",".join("?" * len(chunk))
            for key, blob in self._db.execute(
                f"SELECT key, vec FROM emb WHERE key IN ({marks})", chunk
            ):
                found[key] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put_many(self, items: dict[str, np.ndarray]) -> None:
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO emb (key, vec) VALUES (?, ?)",
                [
                    (k, np.ascontiguousarray(v, dtype=np.float32).tobytes())
                    for k, v in items.items()
                ],
            )

    def close(self) -> None:
        self._db.close()


class CachedEncoder(Encoder):
    """Wraps an encoder; only texts never seen before reach the model."""

    def __init__(self, inner: Encoder, cache: EmbeddingCache) -> None:
        self.inner = inner
        self.cache = cache
        self.name = inner.name
        self.dim = inner.dim
        self.languages = inner.languages
        self.hits = 0
        self.misses = 0

    def encode(self, texts, *, role=Role.PRODUCT, batch_size=64, show_progress=False):
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        keys = [EmbeddingCache.key(self.name, role, t) for t in texts]
        found = self.cache.get_many(list(dict.fromkeys(keys)))
        todo = list(dict.fromkeys(t for t, k in zip(texts, keys) if k not in found))
        self.hits += len(texts) - len(todo)
        self.misses += len(todo)
        if todo:
            fresh = self.inner.encode(
                todo, role=role, batch_size=batch_size, show_progress=show_progress
            )
            new = {EmbeddingCache.key(self.name, role, t): v for t, v in zip(todo, fresh)}
            self.cache.put_many(new)
            found.update(new)
        return np.vstack([found[k] for k in keys]).astype(np.float32, copy=False)

    def files(self):
        return self.inner.files()

    def _encode(self, texts, *, role, batch_size, show_progress):  # pragma: no cover
        raise NotImplementedError("CachedEncoder.encode is overridden")
