"""What an encoder's weights are, as a digest of its files: the key for anything computed
with them (bundled category embeddings), so replacing the weights never reuses stale vectors."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable
from pathlib import Path

# Files that say nothing about what a model computes.
_IGNORED = {"README.md", ".gitattributes", ".gitignore"}
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


def files_digest(paths: Iterable[str | Path], root: str | Path | None = None) -> str:
    """One digest over several files: their names (relative to `root`) and contents."""
    digest = hashlib.sha256()
    for path in sorted(Path(p) for p in paths):
        name = str(path.relative_to(root)) if root is not None else path.name
        digest.update(f"{name}\x00{file_sha256(path)}\x00".encode())
    return digest.hexdigest()


def directory_digest(directory: str | Path) -> str:
    """Digest of every file under a model directory (weights, config, tokenizer), READMEs
    and VCS files aside.

    Example:
        >>> directory_digest(packaged_minilm_path())[:12]   # doctest: +SKIP
        '5d1d2b7e38f1'
    """
    root = Path(directory)
    files = [
        p
        for p in root.rglob("*")
        if p.is_file() and p.name not in _IGNORED and ".git" not in p.relative_to(root).parts
    ]
    return files_digest(files, root)
