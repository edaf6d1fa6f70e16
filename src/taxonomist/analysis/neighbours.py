"""The training products a model was trained on, searchable by title, saved with the model.

Explanations show the nearest training products (id, title, label) beside a prediction, and
the active learner skips pool products that are near-copies of labelled ones. Both need the
training rows, which a model's weights do not keep, so training writes them beside the
weights: ids, titles and labels as JSON, and the titles' word TF-IDF vectors (uni- and
bigrams, sublinear tf, L2-normalised) as a CSR matrix in safetensors with the vocabulary in
JSON — no pickle, and a few MB for a catalogue of 30k products.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

INDEX_FILE = "neighbours.safetensors"
ROWS_FILE = "neighbours.json"
TOKEN = r"(?u)\b\w+\b"


@dataclass(frozen=True)
class Neighbour:
    id: str
    title: str
    label: str  # category id
    similarity: float


def _vectorizer(vocabulary: dict[str, int] | None = None) -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(
        ngram_range=(1, 2), sublinear_tf=True, token_pattern=TOKEN, vocabulary=vocabulary,
        dtype=np.float32,
    )  # fmt: skip


class TrainingIndex:
    """Rows (id, title, category id) and their title vectors."""

    def __init__(self, ids: list[str], titles: list[str], labels: list[str], vectorizer, matrix):
        self.ids, self.titles, self.labels = ids, titles, labels
        self._vectorizer = vectorizer
        self.matrix = matrix  # (rows, vocabulary) CSR, rows L2-normalised

    @classmethod
    def build(
        cls, ids: Sequence[str] | None, titles: Sequence[str], labels: Sequence[str]
    ) -> TrainingIndex:
        ids = [str(i) for i in ids] if ids is not None else [str(n + 1) for n in range(len(titles))]
        vectorizer = _vectorizer()
        try:
            matrix = vectorizer.fit_transform(titles).tocsr()
        except ValueError:  # no word at all (titles of symbols only): an empty vocabulary
            vectorizer = _vectorizer({"": 0})
            matrix = vectorizer.fit_transform(titles).tocsr()
        return cls(list(ids), list(titles), list(labels), vectorizer, matrix)

    def __len__(self) -> int:
        return len(self.ids)

    def vectors(self, texts: Sequence[str]):
        return self._vectorizer.transform(list(texts)).tocsr()

    def query(self, texts: Sequence[str], k: int = 5) -> list[list[Neighbour]]:
        """The `k` most similar training rows of each text (cosine of title vectors > 0)."""
        sims = (self.vectors(texts) @ self.matrix.T).tocsr()
        out: list[list[Neighbour]] = []
        for i in range(len(texts)):
            lo, hi = sims.indptr[i], sims.indptr[i + 1]
            cols, vals = sims.indices[lo:hi], sims.data[lo:hi]
            order = np.argsort(-vals, kind="stable")[:k]
            out.append(
                [
                    Neighbour(self.ids[c], self.titles[c], self.labels[c], float(v))
                    for c, v in zip(cols[order], vals[order])
                ]
            )
        return out

    def max_similarity(self, texts: Sequence[str], chunk: int = 2000) -> np.ndarray:
        """Each text's cosine to its most similar training row."""
        best = np.zeros(len(texts), dtype=np.float32)
        vectors = self.vectors(texts)
        for start in range(0, len(texts), chunk):
            sims = vectors[start : start + chunk] @ self.matrix.T
            if sims.nnz:
                best[start : start + chunk] = sims.max(axis=1).toarray().ravel()
        return best

    def save(self, directory: str | Path) -> None:
        from safetensors.numpy import save_file

        directory = Path(directory)
        rows = {"ids": self.ids, "titles": self.titles, "labels": self.labels}
        vocabulary = {k: int(v) for k, v in self._vectorizer.vocabulary_.items()}
        (directory / ROWS_FILE).write_text(
            json.dumps({**rows, "vocabulary": vocabulary}, ensure_ascii=False), "utf-8"
        )
        m = self.matrix
        save_file(
            {
                "idf": np.asarray(self._vectorizer.idf_, dtype=np.float32),
                "data": np.ascontiguousarray(m.data, dtype=np.float32),
                "indices": np.ascontiguousarray(m.indices, dtype=np.int32),
                "indptr": np.ascontiguousarray(m.indptr, dtype=np.int64),
            },
            str(directory / INDEX_FILE),
        )

    @classmethod
    def load(cls, directory: str | Path) -> TrainingIndex | None:
        """The index saved in a model directory, or None for a model trained without one."""
        from safetensors.numpy import load_file
        from scipy.sparse import csr_matrix

        directory = Path(directory)
        if not (directory / ROWS_FILE).exists():
            return None
        rows = json.loads((directory / ROWS_FILE).read_text("utf-8"))
        tensors = load_file(str(directory / INDEX_FILE))
        vectorizer = _vectorizer(rows["vocabulary"])
        vectorizer.idf_ = tensors["idf"]
        matrix = csr_matrix(
            (tensors["data"], tensors["indices"], tensors["indptr"]),
            shape=(len(rows["ids"]), len(rows["vocabulary"])),
        )
        return cls(rows["ids"], rows["titles"], rows["labels"], vectorizer, matrix)
