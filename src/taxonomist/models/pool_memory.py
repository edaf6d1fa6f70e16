"""`fewshot`'s memory of the catalogue: its labelled and pseudo-labelled products, compared
with a title on rare n-grams (model numbers, series names), the nearest voting as in `knn`.

A product does not vote for itself: a pool title's pseudo-label is what the members made of
that same title, so its own vote would only repeat their mistakes (on pricerunner's pool
rows, at 10 a category, self-votes cost 0.3 points where new products gained a point).
Cross-validation weighs the memory on held-out products whose copies were left out of it
(`FewShotConfig.group_folds`); leaving a title's own row out at prediction asks the same.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from .knn import unit_rows, vote

# similarity squared (near-copies count most), and the floor that keeps a category no
# neighbour voted for finite: `knn`'s defaults
POWER, SMOOTHING = 2.0, 0.01


def title_key(title: str) -> int:
    """A stable 63-bit key of a title, the same whatever the process (saved with the model)."""
    digest = hashlib.blake2b(title.strip().lower().encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


@dataclass
class PoolMemory:
    keep: np.ndarray  # the n-gram columns compared on
    remembered: Any  # CSR, columns x products, unit columns
    labels: np.ndarray  # a label per remembered product
    keys: np.ndarray  # `title_key` per remembered product

    @classmethod
    def build(cls, keep, rows, labels, titles: list[str]) -> PoolMemory:
        """From TF-IDF `rows` (products), their `labels` and `titles`."""
        return cls(
            np.asarray(keep, dtype=np.int32),
            unit_rows(rows[:, keep]).T.tocsr(),
            np.asarray(labels, dtype=np.int32),
            np.array([title_key(t) for t in titles], dtype=np.int64),
        )

    def scores(self, x, titles: list[str], n_labels: int, k: int) -> np.ndarray:
        """Log-votes (titles, labels) of the `k` remembered products nearest each of
        `titles` (TF-IDF rows `x`), none of them a product with the same title."""
        sims = (unit_rows(x[:, self.keep]) @ self.remembered).tocsr()
        keys = [title_key(t) for t in titles]
        same: dict[int, list[int]] = {}
        for row in np.flatnonzero(np.isin(self.keys, keys)):
            same.setdefault(int(self.keys[row]), []).append(int(row))
        for i, key in enumerate(keys):
            rows = same.get(key)
            if rows:
                lo, hi = sims.indptr[i], sims.indptr[i + 1]
                sims.data[lo:hi][np.isin(sims.indices[lo:hi], rows)] = 0.0
        return vote(sims, self.labels, n_labels, k, POWER, SMOOTHING)

    def tensors(self) -> dict[str, np.ndarray]:
        return {
            "memory_keep": np.ascontiguousarray(self.keep, dtype=np.int32),
            "memory_data": np.ascontiguousarray(self.remembered.data, dtype=np.float32),
            "memory_indices": np.ascontiguousarray(self.remembered.indices, dtype=np.int32),
            "memory_indptr": np.ascontiguousarray(self.remembered.indptr, dtype=np.int64),
            "memory_labels": np.ascontiguousarray(self.labels, dtype=np.int32),
            "memory_keys": np.ascontiguousarray(self.keys, dtype=np.int64),
        }

    @classmethod
    def from_tensors(cls, tensors: dict[str, np.ndarray]) -> PoolMemory:
        from scipy.sparse import csr_matrix

        keep, labels = tensors["memory_keep"], tensors["memory_labels"]
        remembered = csr_matrix(
            (tensors["memory_data"], tensors["memory_indices"], tensors["memory_indptr"]),
            shape=(len(keep), len(labels)),
        )
        return cls(keep, remembered, labels, tensors["memory_keys"])
