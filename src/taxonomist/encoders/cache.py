"""On-disk embedding cache keyed by (encoder, role, text), so repeated runs do not re-encode.

SQLite rather than a pickle/npz blob: safe to open, concurrent readers, incremental writes.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import threading
from collections.abc import Sequence
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


class EmbeddingCache:
    """A key -> float32 vector store in one SQLite file.

    Safe to share between threads: each thread gets its own connection (one sqlite3
    connection used from several threads at once raises `OperationalError`), and WAL mode
    lets readers and one writer work side by side across threads and processes.
    """

    def __init__(self, directory: str | Path | None = None) -> None:
        self.path = Path(directory or default_cache_dir()) / "embeddings.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        db = self._db
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE IF NOT EXISTS emb (key TEXT PRIMARY KEY, vec BLOB)")
        db.commit()

    @property
    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
            self._local.db = db
            with self._lock:
                self._connections.append(db)
        return db

    @staticmethod
    def key(encoder_name: str, role: Role, text: str) -> str:
        return hashlib.sha1(f"{encoder_name}\x00{role.value}\x00{text}".encode()).hexdigest()

    def get_many(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        db = self._db
        for start in range(0, len(keys), 500):
            chunk = list(keys[start : start + 500])
            marks = ",".join("?" * len(chunk))
            for key, blob in db.execute(f"SELECT key, vec FROM emb WHERE key IN ({marks})", chunk):
                found[key] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put_many(self, items: dict[str, np.ndarray]) -> None:
        db = self._db
        with db:
            db.executemany(
                "INSERT OR REPLACE INTO emb (key, vec) VALUES (?, ?)",
                [
                    (k, np.ascontiguousarray(v, dtype=np.float32).tobytes())
                    for k, v in items.items()
                ],
            )

    def close(self) -> None:
        with self._lock:
            for db in self._connections:
                db.close()
            self._connections.clear()
        self._local = threading.local()


def open_cache(directory: str | Path | None = None, *, enabled: bool | None = None):
    """The embedding cache to use, or None for none.

    `enabled=None` follows TAXONOMIST_NO_CACHE=1. A cache folder that cannot be written (a
    read-only home on a server) turns caching off with a warning instead of failing: the
    cache only saves time, it never changes a prediction.
    """
    if enabled is None:
        enabled = os.environ.get("TAXONOMIST_NO_CACHE") != "1"
    if not enabled:
        return None
    try:
        return EmbeddingCache(directory)
    except (OSError, sqlite3.Error) as exc:
        logger.warning(
            "embedding cache at %s is not usable (%s); encoding without a cache",
            directory or default_cache_dir(),
            exc,
        )
        return None


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

    def weights_digest(self) -> str | None:
        return self.inner.weights_digest()

    def _encode(self, texts, *, role, batch_size, show_progress):  # pragma: no cover
        raise NotImplementedError("CachedEncoder.encode is overridden")
