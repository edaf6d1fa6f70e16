"""Prediction results as objects; serialised to rows only at the edge (writers, API)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from .errors import ConfigError
from .taxonomy import PATH_SEPARATOR, Taxonomy


def primary_language(taxonomy: Taxonomy) -> str:
    """The language of the taxonomy's primary names ("en" unless it has no English)."""
    langs = taxonomy.languages
    return langs[0] if langs else "en"


def missing_language(taxonomy: Taxonomy, language: str | None) -> str | None:
    """Why `taxonomy` cannot name its categories in `language`, or None when it can (None
    and "en", the primary names, always can)."""
    if language in (None, "en"):
        return None
    if language != primary_language(taxonomy) and language not in taxonomy.languages:
        return (
            f"taxonomy '{taxonomy.name}' has no names in language '{language}'; it has "
            f"{', '.join(taxonomy.languages) or 'en'}"
        )
    return None


def check_language(taxonomy: Taxonomy, language: str | None) -> None:
    """Raise a clear error unless `taxonomy` has names in `language` (None and "en", the
    primary names, always do)."""
    problem = missing_language(taxonomy, language)
    if problem is not None:
        raise ConfigError(problem)


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
    """Ranked candidates for one product (best first).

    `suggested` is set only on a row backed off by a confidence threshold: the model's
    full-depth guess, which the kept (shorter) best path is an ancestor of, so a reviewer
    sees what the model would have said. `llm_status` says what an LLM re-ranking did to it
    (`taxonomist.llm.LLMStatus`), empty when none was asked.
    """

    product_id: str
    candidates: tuple[Candidate, ...]
    needs_review: bool = False
    suggested: Candidate | None = None
    llm_status: str = ""

    @property
    def best(self) -> Candidate:
        return self.candidates[0]


class Predictions(Sequence[ProductPrediction]):
    """A batch of product predictions with filtering helpers.

    Example:
        >>> preds.top_k(1)[0].best.path_str   # doctest: +SKIP
        'Electronics > Communications > Telephony > Mobile & Smart Phones'
    """

    def __init__(
        self,
        items: Sequence[ProductPrediction],
        *,
        model: Any = None,
        proba: Any = None,
        labels: Sequence[str] | None = None,
        warnings: Sequence[str] = (),
    ) -> None:
        self._items = list(items)
        # which model made these (a `classifier.ModelIdentity`), and on request its full
        # class probabilities: rows follow the items, columns follow `labels` (category ids)
        self.model = model
        self.proba = proba
        self.labels = list(labels) if labels is not None else None
        # what a caller should know about the whole batch (e.g. names not in the language
        # asked for), as the API's `warnings`
        self.warnings = list(warnings)

    def _derived(self, items: Sequence[ProductPrediction]) -> Predictions:
        return Predictions(
            items, model=self.model, proba=self.proba, labels=self.labels, warnings=self.warnings
        )

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            proba = self.proba[index] if self.proba is not None else None
            return Predictions(
                self._items[index],
                model=self.model,
                proba=proba,
                labels=self.labels,
                warnings=self.warnings,
            )
        return self._items[index]

    def __iter__(self) -> Iterator[ProductPrediction]:
        return iter(self._items)

    def top_k(self, k: int) -> Predictions:
        return self._derived([replace(p, candidates=p.candidates[:k]) for p in self._items])

    def above(self, threshold: float) -> Predictions:
        """Keep only candidates whose path confidence is at least `threshold`."""
        return self._derived(
            [
                replace(p, candidates=tuple(c for c in p.candidates if c.confidence >= threshold))
                for p in self._items
            ]
        )

    def with_min_confidence(self, threshold: float, taxonomy: Taxonomy) -> Predictions:
        """Back each best path off to its deepest level whose confidence reaches `threshold`.

        A product whose best path had to be shortened is flagged `needs_review` and keeps
        the model's full-depth guess in `suggested`. The top level is always kept, even when
        it falls short too: an empty row gives a reviewer nothing to start from, and the
        flag (with the low confidence beside it) already says not to trust it.
        """
        out = []
        for pred in self._items:
            if not pred.candidates:
                out.append(pred)
                continue
            best = pred.best
            passing = [d for d, c in enumerate(best.level_confidences, 1) if c >= threshold]
            depth = max(passing, default=1)
            if depth == len(best.path) and best.confidence >= threshold:
                out.append(pred)
                continue
            depth = min(depth, len(best.path))
            ancestor = taxonomy.by_path(best.path[:depth])
            cut = best.truncated(depth, ancestor.id)
            out.append(
                replace(
                    pred,
                    candidates=(cut, *pred.candidates[1:]),
                    needs_review=True,
                    suggested=best,
                )
            )
        return self._derived(out)

    def localized(self, taxonomy: Taxonomy, language: str | None) -> Predictions:
        """The same predictions with every path written in `language`, level by level
        falling back to the primary name where the taxonomy has no name in that language.

        Raises:
            ConfigError: the taxonomy has no names at all in `language`.
        """
        if language in (None, "en"):
            return self
        check_language(taxonomy, language)
        if language == primary_language(taxonomy):
            return self

        def local(cand: Candidate | None) -> Candidate | None:
            if cand is None:
                return None
            return replace(cand, path=taxonomy.localized_path(cand.category_id, language))

        return self._derived(
            [
                replace(
                    p,
                    candidates=tuple(local(c) for c in p.candidates),  # type: ignore[misc]
                    suggested=local(p.suggested),
                )
                for p in self._items
            ]
        )

    def extend(self, other: Predictions) -> None:
        self._items.extend(other)
