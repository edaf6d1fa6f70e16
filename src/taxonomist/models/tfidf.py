"""TF-IDF word and character n-grams, as the `linear` and `knn` kinds both read titles.

Kept without pickle: the vocabularies go to JSON and the idf vectors to safetensors, and the
vectorisers are rebuilt from them, so a loaded model transforms text exactly as it did when
trained.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


class TfidfFeatures:
    """Word n-grams and within-word character n-grams, sublinear tf, each part L2-normalised.

    Args:
        word_ngrams / char_ngrams: n-gram ranges.
        min_df: drop n-grams seen in fewer training rows.
    """

    def __init__(
        self,
        word_ngrams: tuple[int, int],
        char_ngrams: tuple[int, int],
        min_df: int = 1,
        *,
        vocabulary: dict[str, dict[str, int]] | None = None,
    ) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        vocabulary = vocabulary or {}
        common = dict(sublinear_tf=True, lowercase=True, dtype=np.float32, min_df=min_df)
        self._word = TfidfVectorizer(
            analyzer="word",
            ngram_range=tuple(word_ngrams),
            token_pattern=r"(?u)\b\w+\b",  # keep one-character tokens: sizes, model letters
            vocabulary=vocabulary.get("word"),
            **common,
        )
        self._char = TfidfVectorizer(
            analyzer="char_wb",
            ngram_range=tuple(char_ngrams),
            vocabulary=vocabulary.get("char"),
            **common,
        )

    def fit_transform(self, texts: Sequence[str]):
        """Learn vocabularies and idf from `texts`; their features as one CSR matrix."""
        from scipy.sparse import hstack

        return hstack([self._word.fit_transform(texts), self._char.fit_transform(texts)]).tocsr()

    def transform(self, texts: Sequence[str]):
        from scipy.sparse import hstack

        return hstack([self._word.transform(texts), self._char.transform(texts)]).tocsr()

    def vocabulary(self) -> dict[str, dict[str, int]]:
        """Both vocabularies, JSON-ready."""
        return {
            "word": {k: int(v) for k, v in self._word.vocabulary_.items()},
            "char": {k: int(v) for k, v in self._char.vocabulary_.items()},
        }

    def idf_tensors(self) -> dict[str, np.ndarray]:
        return {"word_idf": np.asarray(self._word.idf_), "char_idf": np.asarray(self._char.idf_)}

    @classmethod
    def restore(
        cls,
        word_ngrams: tuple[int, int],
        char_ngrams: tuple[int, int],
        vocabulary: dict[str, dict[str, int]],
        tensors: dict[str, Any],
    ) -> TfidfFeatures:
        """Rebuild fitted vectorisers from `vocabulary()` and `idf_tensors()`."""
        features = cls(word_ngrams, char_ngrams, vocabulary=vocabulary)
        features._word.idf_ = tensors["word_idf"]
        features._char.idf_ = tensors["char_idf"]
        return features
