"""`knn`: a vote of the most similar labelled products; in the presets, similar by rare n-grams.

Titles carry identifiers: model numbers, series names, SKU fragments (`fab28`, `rke640`). Such
an n-gram pins a product line down better than any common word, but a linear model gives it
one weight among hundreds of thousands, so "smeg fab28lb1 fridge freezer" follows the words
"fridge freezer" even when every `fab28` in the catalogue is filed under Fridges. This kind
remembers the catalogue instead: the `k` training rows most similar to a title (cosine over
TF-IDF n-grams) vote, each with its similarity raised to `power`. With `max_df` below 1 only
the n-grams found in at most that share of training rows count; the presets use 0.002, which
keeps identifiers and little else. A title that then shares nothing with any training row gets
equal scores for every class, which in the log-linear `ensemble` changes nothing, so that
setting suits an ensemble member. The default (1.0, every n-gram) is a plain nearest-neighbour
classifier.

Persisted without pickle: vocabularies as JSON, the remembered rows as a CSR matrix in
safetensors.
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
class KnnConfig:
    """Args:
    word_ngrams / char_ngrams: n-gram ranges, as in `linear`.
    max_df: compare on the n-grams found in at most this share of training rows (1.0: all).
    k: neighbours that vote.
    power: a neighbour's vote is its cosine similarity to this power (near-copies count most).
    smoothing: added to every class's votes, so an unseen class keeps a finite log-score.
    """

    word_ngrams: tuple[int, int] = (1, 2)
    char_ngrams: tuple[int, int] = (2, 5)
    # set by training when the catalogue has Chinese products (models/tfidf.py says why)
    cjk_char_ngrams: tuple[int, int] | None = None
    max_df: float = 1.0
    k: int = 10
    power: float = 2.0
    smoothing: float = 0.01

    def __post_init__(self) -> None:
        check_positive("knn", k=self.k, power=self.power, smoothing=self.smoothing)
        if not 0 < self.max_df <= 1:
            raise ConfigError(f"knn.max_df must be in (0, 1], got {self.max_df}")
        check_ngram_ranges("knn", word_ngrams=self.word_ngrams, char_ngrams=self.char_ngrams)
        if self.cjk_char_ngrams is not None:
            check_ngram_ranges("knn", cjk_char_ngrams=self.cjk_char_ngrams)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> KnnConfig:
        return config_from_dict(cls, data)


def unit_rows(matrix):
    from sklearn.preprocessing import normalize

    return normalize(matrix, copy=False).astype(np.float32)


def rare_columns(features, max_df: float, at_least: int = 1) -> np.ndarray:
    """The columns of `features` (rows: products) non-zero in at most `max_df` of the rows,
    or in `at_least` rows where that is more (a tiny catalogue keeps its n-grams)."""
    rows_with = np.bincount(features.indices, minlength=features.shape[1])
    most = max(at_least, int(max_df * features.shape[0]))
    return np.flatnonzero(rows_with <= most).astype(np.int32)


def vote(sims, memory_y: np.ndarray, n_labels: int, k: int, power: float, smoothing: float):
    """Log-votes (rows of `sims`, labels): the `k` most similar remembered products of each
    row (`sims`: CSR, query rows by remembered products) vote for their label (`memory_y`;
    a negative label is not remembered), each with its similarity to the `power`."""
    votes = np.zeros((sims.shape[0], n_labels))
    for i in range(sims.shape[0]):
        lo, hi = sims.indptr[i], sims.indptr[i + 1]
        cols, vals = sims.indices[lo:hi], sims.data[lo:hi]
        known = memory_y[cols] >= 0
        cols, vals = cols[known], vals[known]
        if len(vals) > k:
            top = np.argpartition(-vals, k)[:k]
            cols, vals = cols[top], vals[top]
        np.add.at(votes[i], memory_y[cols], np.maximum(vals, 0.0) ** power)
    return np.log(votes + smoothing)


class KnnModel(Model):
    kind = "knn"
    config_class = KnnConfig

    def __init__(self, taxonomy, config: KnnConfig | None = None) -> None:
        super().__init__(taxonomy, config)
        self._tfidf: TfidfFeatures | None = None
        self._keep: np.ndarray | None = None  # the columns of the n-grams compared on
        self._memory: Any = None  # (kept n-grams, training rows), CSR: one product a column
        self._memory_y: np.ndarray | None = None

    def _compared(self, features):
        assert self._keep is not None
        if len(self._keep) < features.shape[1]:  # plain kNN keeps every column: no copy
            features = features[:, self._keep]
        return unit_rows(features)

    def _fit(self, texts, y, valid_texts, valid_y, progress: Progress | None):
        cfg = self.config
        self._tfidf = TfidfFeatures(
            cfg.word_ngrams, cfg.char_ngrams, cjk_char_ngrams=cfg.cjk_char_ngrams
        )
        features = self._tfidf.fit_transform(texts)
        self._keep = rare_columns(features, cfg.max_df)
        self._memory = self._compared(features).T.tocsr()
        self._memory_y = np.asarray(y, dtype=np.int32)
        if progress:
            progress("fit", 1, 1)
        row: dict[str, float] = {
            "epoch": 1,
            "memory_rows": float(len(texts)),
            "ngrams_compared": float(len(self._keep)),
        }
        if valid_texts:
            row["valid_accuracy"] = float((self._logits(valid_texts).argmax(1) == valid_y).mean())
        return [row]

    def _logits(self, texts):
        assert self._tfidf is not None and self._memory_y is not None
        cfg = self.config
        sims = (self._compared(self._tfidf.transform(texts)) @ self._memory).tocsr()
        return vote(sims, self._memory_y, len(self.labels), cfg.k, cfg.power, cfg.smoothing)

    def _manifest_extra(self) -> dict[str, Any]:
        assert self._keep is not None and self._memory_y is not None
        return {"memory_rows": len(self._memory_y), "ngrams_compared": len(self._keep)}

    def _save(self, directory: Path) -> None:
        from safetensors.numpy import save_file

        assert self._tfidf is not None and self._keep is not None and self._memory_y is not None
        vocab = json.dumps(self._tfidf.vocabulary(), ensure_ascii=False)
        (directory / "vocabulary.json").write_text(vocab, "utf-8")
        memory = self._memory
        save_file(
            {
                **self._tfidf.idf_tensors(),
                "keep": self._keep,
                "memory_data": np.ascontiguousarray(memory.data, dtype=np.float32),
                "memory_indices": np.ascontiguousarray(memory.indices, dtype=np.int32),
                "memory_indptr": np.ascontiguousarray(memory.indptr, dtype=np.int64),
                "memory_labels": self._memory_y,
            },
            str(directory / "knn.safetensors"),
        )

    def _load(self, directory: Path, manifest: dict[str, Any]) -> None:
        from safetensors.numpy import load_file
        from scipy.sparse import csr_matrix

        cfg = self.config
        vocab = json.loads((directory / "vocabulary.json").read_text("utf-8"))
        tensors = load_file(str(directory / "knn.safetensors"))
        self._tfidf = TfidfFeatures.restore(
            cfg.word_ngrams, cfg.char_ngrams, vocab, tensors, cfg.cjk_char_ngrams
        )
        self._keep = tensors["keep"]
        self._memory_y = tensors["memory_labels"]
        self._memory = csr_matrix(
            (tensors["memory_data"], tensors["memory_indices"], tensors["memory_indptr"]),
            shape=(len(self._keep), len(self._memory_y)),
        )
