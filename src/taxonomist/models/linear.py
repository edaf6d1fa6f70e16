"""`linear`: TF-IDF word and character n-grams with a linear classifier — the fast tier.

Persisted without pickle: the two vocabularies as JSON, idf vectors and the weight matrix as
safetensors; the vectorisers are rebuilt from them on load.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from .base import Model, Progress
from .config import check_ngram_ranges, check_positive, config_from_dict
from .tfidf import TfidfFeatures


@dataclass(frozen=True)
class LinearConfig:
    """Args:
    word_ngrams / char_ngrams: n-gram ranges; char n-grams stay inside word boundaries.
    min_df: drop n-grams seen in fewer documents (keeps the vocabulary and model small).
    classifier: "svm" (LinearSVC, squared hinge) or "logreg" (multinomial logistic).
    C: inverse regularisation strength.
    balance: weight classes inversely to their frequency (long tails).
    """

    word_ngrams: tuple[int, int] = (1, 2)
    char_ngrams: tuple[int, int] = (2, 5)
    # set by training when the catalogue has Chinese products (models/tfidf.py says why)
    cjk_char_ngrams: tuple[int, int] | None = None
    min_df: int = 1
    classifier: str = "svm"
    C: float = 0.5
    balance: bool = False
    max_iter: int = 2000

    def __post_init__(self) -> None:
        if self.classifier not in ("svm", "logreg"):
            raise ConfigError(
                f"linear.classifier must be 'svm' or 'logreg', got {self.classifier!r}"
            )
        check_positive("linear", C=self.C, min_df=self.min_df, max_iter=self.max_iter)
        check_ngram_ranges("linear", word_ngrams=self.word_ngrams, char_ngrams=self.char_ngrams)
        if self.cjk_char_ngrams is not None:
            check_ngram_ranges("linear", cjk_char_ngrams=self.cjk_char_ngrams)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LinearConfig:
        return config_from_dict(cls, data)


class LinearModel(Model):
    kind = "linear"
    config_class = LinearConfig

    def __init__(self, taxonomy, config: LinearConfig | None = None) -> None:
        super().__init__(taxonomy, config)
        self._tfidf: TfidfFeatures | None = None
        self._coef: np.ndarray | None = None
        self._intercept: np.ndarray | None = None

    def _fit(self, texts, y, valid_texts, valid_y, progress: Progress | None):
        from sklearn.linear_model import LogisticRegression
        from sklearn.svm import LinearSVC

        cfg = self.config
        self._tfidf = TfidfFeatures(
            cfg.word_ngrams, cfg.char_ngrams, cfg.min_df, cjk_char_ngrams=cfg.cjk_char_ngrams
        )
        features = self._tfidf.fit_transform(texts)
        weight = "balanced" if cfg.balance else None
        if cfg.classifier == "svm":
            clf = LinearSVC(C=cfg.C, class_weight=weight, max_iter=cfg.max_iter)
        else:
            clf = LogisticRegression(C=cfg.C, class_weight=weight, max_iter=cfg.max_iter)
        clf.fit(features, y)
        # C order: safetensors writes raw buffers, and sklearn may hand back Fortran order
        coef = np.ascontiguousarray(clf.coef_, dtype=np.float32)
        intercept = np.ascontiguousarray(clf.intercept_, dtype=np.float32)
        if coef.shape[0] == 1:  # binary: sklearn keeps one row; make it one row per class
            coef = np.vstack([-coef / 2, coef / 2])
            intercept = np.array([-intercept[0] / 2, intercept[0] / 2], dtype=np.float32)
        self._coef, self._intercept = coef, intercept
        if progress:
            progress("fit", 1, 1)
        row: dict[str, float] = {"epoch": 1, "features": float(features.shape[1])}
        if valid_texts:
            row["valid_accuracy"] = float((self._logits(valid_texts).argmax(1) == valid_y).mean())
        return [row]

    def _logits(self, texts):
        assert self._tfidf is not None and self._coef is not None and self._intercept is not None
        return np.asarray(self._tfidf.transform(texts) @ self._coef.T) + self._intercept

    def _save(self, directory: Path) -> None:
        from safetensors.numpy import save_file

        assert self._tfidf is not None and self._coef is not None and self._intercept is not None
        vocab = json.dumps(self._tfidf.vocabulary(), ensure_ascii=False)
        (directory / "vocabulary.json").write_text(vocab, "utf-8")
        save_file(
            {**self._tfidf.idf_tensors(), "coef": self._coef, "intercept": self._intercept},
            str(directory / "linear.safetensors"),
        )

    def _load(self, directory: Path, manifest: dict[str, Any]) -> None:
        from safetensors.numpy import load_file

        vocab = json.loads((directory / "vocabulary.json").read_text("utf-8"))
        tensors = load_file(str(directory / "linear.safetensors"))
        cfg = self.config
        self._tfidf = TfidfFeatures.restore(
            cfg.word_ngrams, cfg.char_ngrams, vocab, tensors, cfg.cjk_char_ngrams
        )
        self._coef, self._intercept = tensors["coef"], tensors["intercept"]
