"""From predictions to queue items: what `classify --review-db` and the API call."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..predictions import Predictions, ProductPrediction
from ..routing import Routing, route
from .queue import LOW_CONFIDENCE, QueueEntry, ReviewStore

SUGGESTIONS = 5  # a reviewer sees this many of the model's candidates


def model_identity(model_dir: str | Path) -> tuple[str, str]:
    """(name, version) of a model directory: a store version dir is
    `<root>/<name>/versions/<version>`; any other directory is named by its folder and
    versioned by its manifest's digest (so retraining in place gives a new version)."""
    path = Path(model_dir).resolve()
    if path.parent.name == "versions":
        return path.parent.parent.name, path.name
    digest = hashlib.sha256((path / "manifest.json").read_bytes()).hexdigest()[:12]
    return path.name, digest


def suggestions(pred: ProductPrediction) -> list[dict[str, Any]]:
    return [
        {"category_id": c.category_id, "path": c.path_str, "confidence": round(c.confidence, 6)}
        for c in pred.candidates
    ]


def to_review(
    preds: Predictions,
    products: Sequence[Any],
    *,
    model_name: str,
    model_version: str,
    reason: str = LOW_CONFIDENCE,
) -> list[QueueEntry]:
    """Queue entries for the products flagged `needs_review` (`products` aligned with
    `preds`: objects with .id, .text and optionally .image)."""
    out = []
    for pred, product in zip(preds, products):
        if not pred.needs_review or not pred.candidates:
            continue
        text = str(getattr(product, "text", "") or "")
        out.append(
            QueueEntry(
                product_id=pred.product_id,
                suggestions=suggestions(pred),
                model_version=model_version,
                model_name=model_name,
                reason=reason,
                title=text.splitlines()[0][:500] if text else "",
                text=text,
                image=getattr(product, "image", None),
            )
        )
    return out


class ReviewIntake:
    """Routes each batch of predictions and queues the doubtful ones.

    Args:
        store: the review store.
        routing: the model's thresholds; None keeps the `needs_review` flags as they are
            (e.g. from --min-confidence).
    """

    def __init__(
        self, store: ReviewStore, routing: Routing | None, model_name: str, model_version: str
    ) -> None:
        self.store = store
        self.routing = routing
        self.model_name = model_name
        self.model_version = model_version
        self.queued = 0

    def __call__(self, preds: Predictions, products: Sequence[Any]) -> Predictions:
        if self.routing is not None:
            preds = route(preds, self.routing)
        self.queued += self.store.enqueue(
            to_review(preds, products, model_name=self.model_name, model_version=self.model_version)
        )
        return preds
