"""Routing: which predictions a model may file on its own, and which go to a person.

Each category gets a confidence threshold chosen on the model's validation predictions so
that the products predicted into it with at least that confidence reach a precision target
(default 0.99). A prediction below its category's threshold is routed to review. The share
of products that clear their threshold is the *automation rate at that precision*.

A category predicted too rarely on validation to estimate its own precision
(`MIN_SUPPORT` rows) uses one threshold chosen over all validation rows together; one whose
target is out of reach on validation has no threshold (`None`): its products always go to
review.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .errors import ConfigError
from .predictions import Predictions

DEFAULT_PRECISION_TARGET = 0.99
# Below this many validation predictions a category's own precision is too noisy to set a
# threshold at 0.99 (one error among 20 already reads as 0.95).
MIN_SUPPORT = 20


def check_precision_target(target: float) -> float:
    if not 0.0 < float(target) < 1.0 + 1e-12:
        raise ConfigError(f"precision target must be in (0, 1], got {target}")
    return float(target)


def threshold_for(confidence: np.ndarray, correct: np.ndarray, target: float) -> float | None:
    """The lowest confidence t such that the rows with confidence >= t reach `target`
    precision (cut only between distinct confidence values); None when no t does."""
    if confidence.size == 0:
        return None
    order = np.argsort(-confidence, kind="stable")
    conf, hits = confidence[order], correct[order].astype(float)
    precision = np.cumsum(hits) / np.arange(1, conf.size + 1)
    # a cut is only possible after the last row of a run of equal confidences
    cut_ok = np.append(conf[1:] < conf[:-1], True)
    good = np.flatnonzero(cut_ok & (precision >= target - 1e-12))
    if good.size == 0:
        return None
    return float(conf[good[-1]])


@dataclass(frozen=True)
class Routing:
    """Per-category thresholds for a precision target, and what they achieved on validation.

    Example:
        >>> r = Routing(0.99, {"a": 0.9}, default=0.95)
        >>> r.needs_review("a", 0.92), r.needs_review("b", 0.92)
        (False, True)
    """

    precision_target: float
    thresholds: dict[str, float | None] = field(default_factory=dict)
    default: float | None = None
    automation_rate: float | None = None  # on the validation split
    precision: float | None = None  # among the automated validation rows
    rows: int = 0

    def threshold(self, category_id: str) -> float | None:
        if category_id in self.thresholds:
            return self.thresholds[category_id]
        return self.default

    def needs_review(self, category_id: str, confidence: float) -> bool:
        threshold = self.threshold(category_id)
        return threshold is None or confidence < threshold

    def to_dict(self) -> dict[str, Any]:
        return {
            "precision_target": self.precision_target,
            "thresholds": dict(self.thresholds),
            "default": self.default,
            "automation_rate": self.automation_rate,
            "precision": self.precision,
            "rows": self.rows,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Routing:
        return cls(
            precision_target=float(data["precision_target"]),
            thresholds={str(k): v for k, v in dict(data.get("thresholds", {})).items()},
            default=data.get("default"),
            automation_rate=data.get("automation_rate"),
            precision=data.get("precision"),
            rows=int(data.get("rows", 0)),
        )


def choose_routing(
    predicted: Sequence[str],
    confidence: Sequence[float],
    gold: Sequence[str],
    precision_target: float = DEFAULT_PRECISION_TARGET,
    *,
    min_support: int = MIN_SUPPORT,
) -> Routing:
    """Thresholds from validation predictions (category ids), their confidences and gold ids.

    Raises:
        ConfigError: a precision target outside (0, 1], or inputs of different lengths.
    """
    target = check_precision_target(precision_target)
    if not len(predicted) == len(confidence) == len(gold):
        raise ConfigError(
            f"{len(predicted)} predictions, {len(confidence)} confidences, {len(gold)} gold labels"
        )
    conf = np.asarray(confidence, dtype=float)
    correct = np.array([p == g for p, g in zip(predicted, gold)], dtype=bool)
    default = threshold_for(conf, correct, target)
    rows_of: dict[str, list[int]] = defaultdict(list)
    for i, category in enumerate(predicted):
        rows_of[category].append(i)
    thresholds: dict[str, float | None] = {}
    for category, rows in rows_of.items():
        if len(rows) >= min_support:
            thresholds[category] = threshold_for(conf[rows], correct[rows], target)
    routing = Routing(target, thresholds, default, rows=len(conf))
    rate, precision = automation(routing, predicted, conf, gold)
    return replace(routing, automation_rate=rate, precision=precision)


def automation(
    routing: Routing,
    predicted: Sequence[str],
    confidence: Sequence[float] | np.ndarray,
    gold: Sequence[str] | None = None,
) -> tuple[float, float | None]:
    """(share of rows that clear their threshold, precision among them when `gold` is given;
    None when no row clears)."""
    if not len(predicted):
        return 0.0, None
    auto = np.array(
        [not routing.needs_review(p, float(c)) for p, c in zip(predicted, confidence)], dtype=bool
    )
    rate = float(auto.mean())
    if gold is None or not auto.any():
        return rate, None
    hits = [p == g for p, g, a in zip(predicted, gold, auto) if a]
    return rate, float(np.mean(hits))


def route(preds: Predictions, routing: Routing) -> Predictions:
    """Flag `needs_review` on every product whose best category falls below its threshold
    (and on products with no category at all)."""
    out = []
    for pred in preds:
        flag = (
            not pred.candidates
            or pred.needs_review
            or routing.needs_review(pred.best.category_id, pred.best.confidence)
        )
        out.append(replace(pred, needs_review=flag))
    # the batch's model identity, probabilities and notes stay with it
    return Predictions(
        out, model=preds.model, proba=preds.proba, labels=preds.labels, warnings=preds.warnings
    )
