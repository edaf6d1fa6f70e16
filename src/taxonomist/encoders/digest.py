"""Digest of a single weights file (E5's engine file); sentence-transformers directories are
digested by `sentence.weights_digest`. Anything computed with an encoder and kept beyond the
process (bundled category embeddings) is keyed by its weights digest."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

_memo: dict[tuple[str, int, int], str] = {}
_lock = threading.Lock()


def file_sha256(path: str | Path) -> str:
    """sha256 of one file, remembered per (path, size, mtime) so a process hashes a 90 MB
    weights file once."""
    path = Path(path).resolve()
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    with _lock:
        if key in _memo:
            return _memo[key]
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    with _lock:
        _memo[key] = digest.hexdigest()
    return _memo[key]
