"""TF-IDF word and character n-grams, as the `linear` and `knn` kinds both read titles.

Chinese (and other unsegmented CJK text) needs different features. Measured on a validation
split of zh-retail's development rows (docs/benchmarks.md, "Chinese catalogues"): the word
analyzer takes a whole run of Han characters for one "word" (titles have no spaces; the mean
such token is 11 characters, and only 16% of validation tokens ever occur in training), so the
word half of the features memorises titles instead of generalising, and char 2-5 grams miss
the single characters that carry most of the meaning (米, 奶, 纸). With `cjk_char_ngrams` set,
word tokens are runs of non-CJK letters and digits only (brands, sizes, model codes) and a
product whose text is Chinese (`detect_language`) gets character n-grams in that range instead
of `char_ngrams`; other products get exactly the features they would get without it, so a
mixed catalogue gets the right features per product.

Kept without pickle: the vocabularies go to JSON and the idf vectors to safetensors, and the
vectorisers are rebuilt from them, so a loaded model transforms text exactly as it did when
trained.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..encoders.language import detect_language

# runs of letters/digits that are not CJK ideographs: what a word is in a Chinese title
_NON_CJK_WORD = r"(?u)[^\W\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+"


def _char_wb_ngrams(text: str, lo: int, hi: int) -> list[str]:
    """Character n-grams inside space-padded words, as scikit-learn's `char_wb` makes them
    (a word shorter than n counts once), so non-CJK products keep their features exactly."""
    grams: list[str] = []
    for word in text.split():
        padded = f" {word} "
        for n in range(lo, hi + 1):
            grams.extend(padded[i : i + n] for i in range(max(1, len(padded) - n + 1)))
            if len(padded) <= n:
                break
    return grams


class ScriptAwareCharAnalyzer:
    """Per product: `cjk` n-gram range for Chinese text, `other` for the rest (lower-cased)."""

    def __init__(self, other: tuple[int, int], cjk: tuple[int, int]) -> None:
        self.other, self.cjk = tuple(other), tuple(cjk)

    def __call__(self, text: str) -> list[str]:
        text = text.lower()
        lo, hi = self.cjk if detect_language(text) == "zh" else self.other
        return [g for g in _char_wb_ngrams(text, lo, hi) if not g.isspace()]


class TfidfFeatures:
    """Word n-grams and within-word character n-grams, sublinear tf, each part L2-normalised.

    Args:
        word_ngrams / char_ngrams: n-gram ranges.
        min_df: drop n-grams seen in fewer training rows.
        cjk_char_ngrams: when given, Chinese products get character n-grams in this range
            and word tokens skip CJK runs (see the module docstring); None: as for English.
    """

    def __init__(
        self,
        word_ngrams: tuple[int, int],
        char_ngrams: tuple[int, int],
        min_df: int = 1,
        *,
        cjk_char_ngrams: tuple[int, int] | None = None,
        vocabulary: dict[str, dict[str, int]] | None = None,
    ) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        vocabulary = vocabulary or {}
        common = dict(sublinear_tf=True, lowercase=True, dtype=np.float32, min_df=min_df)
        self._word = TfidfVectorizer(
            analyzer="word",
            ngram_range=tuple(word_ngrams),
            # keep one-character tokens: sizes, model letters
            token_pattern=_NON_CJK_WORD if cjk_char_ngrams else r"(?u)\b\w+\b",
            vocabulary=vocabulary.get("word"),
            **common,
        )
        if cjk_char_ngrams:
            self._char = TfidfVectorizer(
                analyzer=ScriptAwareCharAnalyzer(char_ngrams, cjk_char_ngrams),
                vocabulary=vocabulary.get("char"),
                **{**common, "lowercase": False},  # the analyzer lower-cases
            )
        else:
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
        cjk_char_ngrams: tuple[int, int] | None = None,
    ) -> TfidfFeatures:
        """Rebuild fitted vectorisers from `vocabulary()` and `idf_tensors()`."""
        features = cls(
            word_ngrams, char_ngrams, cjk_char_ngrams=cjk_char_ngrams, vocabulary=vocabulary
        )
        features._word.idf_ = tensors["word_idf"]
        features._char.idf_ = tensors["char_idf"]
        return features
