"""Prediction results as objects; serialised to rows only at the edge (writers, API)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

from .taxonomy import PATH_SEPARATOR


@dataclass(frozen=True)
class Candidate:
    """One candidate category path for a product.

    `confidence` is the probability of the whole path; `level_confidences[d]` that of its
    ancestor at depth d+1 (so it never increases going down the path).
    """

    category_id: str
    path: tuple[str, ...]
    confidence: float
    level_confidences: tuple[float, ...]

    @property
    def path_str(self) -> str:
        return PATH_SEPARATOR.join(self.path)

    def truncated(self, depth: int, category_id: str) -> Candidate:
        return replace(
            self,
            category_id=category_id,
            path=self.path[:depth],
            confidence=self.level_confidences[depth - 1],
            level_confidences=self.level_confidences[:depth],
        )


@dataclass(frozen=True)
class ProductPrediction:
    """Ranked candidates for one product (best first)."""

    product_id: str
    candidates: tuple[Candidate, ...]

    @property
    def best(self) -> Candidate:
        return self.candidates[0]


class Predictions(Sequence[ProductPrediction]):
    """A batch of product predictions with filtering helpers.

    Example:
        >>> preds.top_k(1)[0].best.path_str   # doctest: +SKIP
        'Electronics > Communications > Telephony > Mobile & Smart Phones'
    """

    def __init__(self, items: Sequence[ProductPrediction]) -> None:
        self._items = list(items)

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return Predictions(self._items[index])
        return self._items[index]

    def __iter__(self) -> Iterator[ProductPrediction]:
        return iter(self._items)

    def top_k(self, k: int) -> Predictions:
        return Predictions([replace(p, candidates=p.candidates[:k]) for p in self._items])

    def above(self, threshold: float) -> Predictions:
        """Keep only candidates whose path confidence is at least `threshold`."""
        return Predictions(
            [
                replace(p, candidates=tuple(c for c in p.candidates if c.confidence >= threshold))
                for p in self._items
            ]
        )

    def extend(self, other: Predictions) -> None:
        self._items.extend(other)
