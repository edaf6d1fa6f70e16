"""Category embeddings shipped with the package, so a first zero-shot run into a bundled
taxonomy does not spend minutes embedding its categories.

A bundle is one safetensors file under `resources/embeddings/`: float16 unit vectors (one per
category, in the classifier's tree order) and metadata naming the encoder, the digest of its
weights, and the digest of the exact category texts embedded. It is used only when both
digests match: another encoder, replaced weights, a different taxonomy version or other
templates all recompute. `write_bundle` makes one (see scripts/bundle-category-embeddings.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import numpy as np

from .base import Encoder

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
_TENSOR = "embeddings"


def bundle_dir() -> Path:
    return Path(str(resources.files("taxonomist") / "resources" / "embeddings"))


def texts_digest(texts_per_template: Sequence[Sequence[str]]) -> str:
    """Digest of the category texts, template by template, in order."""
    digest = hashlib.sha256()
    for column in texts_per_template:
        digest.update(b"\x1e")
        for text in column:
            digest.update(text.encode("utf-8") + b"\x1f")
    return digest.hexdigest()


def _metadata(path: Path) -> dict[str, str] | None:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as fh:
            return dict(fh.metadata() or {})
    except Exception as exc:  # noqa: BLE001 - a damaged bundle is skipped, never fatal
        logger.warning("ignoring unreadable category embeddings %s: %s", path, exc)
        return None


def find_bundled(
    encoder: Encoder,
    texts_per_template: Sequence[Sequence[str]],
    directory: str | Path | None = None,
) -> np.ndarray | None:
    """The bundled (n, dim) float32 category embeddings for these texts and this encoder's
    weights, or None when no bundle matches (the caller then embeds the texts)."""
    folder = Path(directory) if directory is not None else bundle_dir()
    if not folder.is_dir():
        return None
    wanted = texts_digest(texts_per_template)
    candidates = []
    for path in sorted(folder.glob("*.safetensors")):
        meta = _metadata(path)
        if meta and meta.get("texts_digest") == wanted and meta.get("format_version") == "1":
            candidates.append((path, meta))
    if not candidates:
        return None
    weights = encoder.weights_digest()  # hashing the weights only when a bundle could match
    for path, meta in candidates:
        if weights is None or meta.get("weights_digest") != weights:
            continue
        from safetensors.numpy import load_file

        vectors = load_file(str(path))[_TENSOR].astype(np.float32)
        n = len(texts_per_template[0])
        if vectors.shape != (n, encoder.dim):
            logger.warning("ignoring %s: shape %s, not %s", path, vectors.shape, (n, encoder.dim))
            continue
        logger.info("category embeddings from %s", path.name)
        return vectors
    return None


def write_bundle(
    path: str | Path,
    vectors: np.ndarray,
    encoder: Encoder,
    texts_per_template: Sequence[Sequence[str]],
    *,
    taxonomy: str,
    language: str,
) -> Path:
    """Write `vectors` (the embeddings of `texts_per_template`) as a float16 bundle."""
    from safetensors.numpy import save_file

    weights = encoder.weights_digest()
    if weights is None:
        raise ValueError(f"encoder {encoder.name} has no weights digest; it cannot be bundled")
    meta = {
        "format_version": str(FORMAT_VERSION),
        "encoder": encoder.name,
        "weights_digest": weights,
        "texts_digest": texts_digest(texts_per_template),
        "taxonomy": taxonomy,
        "language": language,
        "count": str(len(vectors)),
        "templates": json.dumps(len(texts_per_template)),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    save_file({_TENSOR: np.ascontiguousarray(vectors, dtype=np.float16)}, tmp, metadata=meta)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    return path
