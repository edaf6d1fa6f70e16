"""Metrics for hierarchical (path-valued) product classification.

A category path is a tuple of names from the top level down, e.g.
``("Apparel", "Topwear", "Shirts")``. Flat metrics treat the full path as the class;
per-level metrics truncate both paths to depth ``d``; hierarchical metrics compare the
sets of ancestors (non-empty prefixes, the path itself included).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from sklearn.metrics import precision_recall_fscore_support

logger = logging.getLogger(__name__)

Path = tuple[str, ...]

SEPARATOR = " > "
NONE_LABEL = "(none)"
OTHER_LABEL = "(other)"
ECE_BINS = 15
ABSTENTION_THRESHOLDS: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(20))
TOP_CONFUSIONS = 20


@dataclass(frozen=True)
class EvaluationResult:
    """Everything :func:`evaluate` computes; plain Python types only, so it serialises."""

    n: int
    metrics: dict[str, float]
    per_level: list[dict[str, float]]
    per_class: list[dict[str, Any]]
    confusion_labels: list[str]
    confusion_matrix: list[list[int]]
    top_confusions: list[dict[str, Any]]
    abstention: list[dict[str, float | None]]
    reliability: list[dict[str, float | int | None]] = field(default_factory=list)
    precision_target: float = 0.95

    def to_dict(self) -> dict[str, Any]:
        """Return every field as JSON-serialisable builtins.

        Returns:
            A dict with one key per field (``reliability`` included).
        """
        return asdict(self)

    def summary(self) -> str:
        """Return a few human-readable lines with the headline numbers.

        Returns:
            A multi-line string (no trailing newline).
        """
        m = self.metrics
        lines = [
            f"Evaluated {self.n} items",
            f"accuracy {m['accuracy']:.3f} | macro-F1 {m['f1_macro']:.3f} | "
            f"weighted-F1 {m['f1_weighted']:.3f} | hierarchical F1 {m['hierarchical_f1']:.3f}",
            "per-level accuracy: "
            + ", ".join(f"L{int(row['level'])} {row['accuracy']:.3f}" for row in self.per_level),
        ]
        if "same_branch" in m:
            lines.append(
                f"gold category, an ancestor or a descendant of it: {m['same_branch']:.3f} "
                f"(ancestor {m['ancestor_of_gold']:.3f}, descendant "
                f"{m['descendant_of_gold']:.3f})"
            )
        if "accuracy_full_depth" in m:
            lines.append(
                f"accuracy of the full-depth guesses (suggested_category on backed-off rows) "
                f"{m['accuracy_full_depth']:.3f}"
            )
        if "ece" in m:
            lines.append(
                f"ECE {m['ece']:.3f} | coverage {m['coverage_at_precision']:.3f} at precision "
                f">= {self.precision_target:g} (threshold {m['threshold_at_precision']:.3f})"
            )
        if "automation_rate" in m:  # predictions routed by a model's per-category thresholds
            lines.append(
                f"automation rate {m['automation_rate']:.3f} (rows not flagged needs_review), "
                f"precision among them {m['automated_precision']:.3f}"
            )
        return "\n".join(lines)


def path_label(path: Path) -> str:
    """Join a path into its display label; an empty path becomes ``"(none)"``.

    Args:
        path: Category names from the top level down.

    Returns:
        The names joined by ``" > "``.
    """
    return SEPARATOR.join(path) if path else NONE_LABEL


def _level_label(path: Path, depth: int) -> str:
    # A prediction that stops above this depth cannot be right here.
    return SEPARATOR.join(path[:depth]) if len(path) >= depth else NONE_LABEL


def _as_paths(paths: Sequence[Path], name: str) -> list[Path]:
    out: list[Path] = []
    for i, p in enumerate(paths):
        # tuple("Shirts") would silently become a path of single letters.
        if isinstance(p, str):
            raise TypeError(f"{name}[{i}] is a string; expected a tuple of category names")
        out.append(tuple(str(x) for x in p))
    return out


def _validate(
    gold: Sequence[Path],
    predicted: Sequence[Path],
    confidence: Sequence[float] | np.ndarray | None,
) -> tuple[list[Path], list[Path], np.ndarray | None]:
    if len(gold) != len(predicted):
        raise ValueError(
            f"gold and predicted differ in length: {len(gold)} gold vs {len(predicted)} predicted"
        )
    if len(gold) == 0:
        raise ValueError("nothing to evaluate")
    g = _as_paths(gold, "gold")
    p = _as_paths(predicted, "predicted")
    for i, path in enumerate(g):
        if not path:
            raise ValueError(f"gold[{i}] is an empty path")
    conf: np.ndarray | None = None
    if confidence is not None:
        conf = np.asarray(confidence, dtype=float)
        if conf.ndim != 1 or conf.shape[0] != len(g):
            raise ValueError(
                f"confidence must be 1-D with one value per item: got shape {conf.shape} "
                f"for {len(g)} items"
            )
        # Written so that NaN fails the check too.
        bad = np.flatnonzero(~((conf >= 0.0) & (conf <= 1.0)))
        if bad.size:
            i = int(bad[0])
            raise ValueError(f"confidence[{i}] = {conf[i]!r} is outside [0, 1]")
    return g, p, conf


def _prf(gold_labels: list[str], pred_labels: list[str]) -> tuple[dict[str, float], list[dict]]:
    """Accuracy, macro/weighted P/R/F1 and per-class rows for one flat labelling.

    Macro averages run over the classes present in gold only: a class that is only ever
    predicted has no recall to speak of, and counting it would punish a model for the size
    of the taxonomy rather than for its mistakes. Such predictions are still errors: they
    lower the recall of the gold classes they were taken from. Weighted averages are
    unaffected by the choice, since a class absent from gold has zero weight.
    """
    # Integer codes keep sklearn off its slow object-array label handling.
    vocab: dict[str, int] = {}
    y_true = np.fromiter((vocab.setdefault(x, len(vocab)) for x in gold_labels), dtype=np.int64)
    y_pred = np.fromiter((vocab.setdefault(x, len(vocab)) for x in pred_labels), dtype=np.int64)
    names = sorted(set(gold_labels))
    ids = [vocab[x] for x in names]
    prec, rec, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=ids, average=None, zero_division=0
    )
    total = float(support.sum())

    def weighted(values: np.ndarray) -> float:
        # Dividing once by the integer total (instead of dotting with normalised weights)
        # keeps an all-ones score at exactly 1.0; the clip guards the last ulp regardless.
        return min(1.0, float(np.dot(support, values)) / total)

    scores = {
        "accuracy": float(np.mean(y_true == y_pred)),
        "precision_macro": float(np.mean(prec)),
        "recall_macro": float(np.mean(rec)),
        "f1_macro": float(np.mean(f1)),
        "precision_weighted": weighted(prec),
        "recall_weighted": weighted(rec),
        "f1_weighted": weighted(f1),
    }
    rows = [
        {
            "category": name,
            "support": int(s),
            "precision": float(pp),
            "recall": float(rr),
            "f1": float(ff),
        }
        for name, pp, rr, ff, s in zip(names, prec, rec, f1, support, strict=True)
    ]
    return scores, rows


def _common_prefix(a: Path, b: Path) -> int:
    k = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        k += 1
    return k


def _hierarchical(gold: list[Path], pred: list[Path]) -> dict[str, float]:
    # Ancestor sets are prefix sets, so their intersection is the common prefix.
    overlap = sum(_common_prefix(g, p) for g, p in zip(gold, pred, strict=True))
    n_pred = sum(len(p) for p in pred)
    n_gold = sum(len(g) for g in gold)
    hp = overlap / n_pred if n_pred else 0.0
    hr = overlap / n_gold if n_gold else 0.0
    hf = 2 * hp * hr / (hp + hr) if hp + hr > 0 else 0.0
    return {"hierarchical_precision": hp, "hierarchical_recall": hr, "hierarchical_f1": hf}


def _same_branch(gold: list[Path], pred: list[Path]) -> dict[str, float]:
    """How the predictions relate to their gold paths along the tree.

    An over-specific "Socks > Crew Socks" for gold "Socks", or a cautious "Socks" for gold
    "Socks > Crew Socks", is a different failure from "Luggage Covers": the first two stay
    on the gold category's branch. An abstention (empty path) is on no branch.
    """
    n = len(gold)
    general = specific = 0
    for g, p in zip(gold, pred, strict=True):
        if not p or g == p:
            continue
        k = _common_prefix(g, p)
        if k == len(p):
            general += 1  # an ancestor of the gold category
        elif k == len(g):
            specific += 1  # a descendant of it
    exact = sum(1 for g, p in zip(gold, pred, strict=True) if g == p)
    return {
        "same_branch": (exact + general + specific) / n,
        "ancestor_of_gold": general / n,
        "descendant_of_gold": specific / n,
    }


def reliability_bins(
    correct: np.ndarray, confidence: np.ndarray, n_bins: int = ECE_BINS
) -> list[dict[str, float | int | None]]:
    """Group items into equal-width confidence bins.

    Bins are ``[lower, upper)`` except the last, which also holds confidence 1.0.

    Args:
        correct: Boolean (or 0/1) array, one entry per item.
        confidence: Confidences in [0, 1], same length as ``correct``.
        n_bins: Number of bins over [0, 1].

    Returns:
        One row per bin, empty bins included: ``lower``, ``upper``, ``count``,
        ``mean_confidence`` and ``accuracy`` (the last two ``None`` when the bin is empty).
    """
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    correct = np.asarray(correct, dtype=float).ravel()
    confidence = np.asarray(confidence, dtype=float).ravel()
    if correct.shape != confidence.shape:
        raise ValueError(
            f"correct and confidence differ in length: {correct.size} vs {confidence.size}"
        )
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.clip(np.searchsorted(edges, confidence, side="right") - 1, 0, n_bins - 1)
    rows: list[dict[str, float | int | None]] = []
    for b in range(n_bins):
        mask = idx == b
        count = int(mask.sum())
        rows.append(
            {
                "lower": float(edges[b]),
                "upper": float(edges[b + 1]),
                "count": count,
                "mean_confidence": float(confidence[mask].mean()) if count else None,
                "accuracy": float(correct[mask].mean()) if count else None,
            }
        )
    return rows


def _ece(bins: list[dict[str, float | int | None]], n: int) -> float:
    total = 0.0
    for row in bins:
        count = int(row["count"] or 0)
        if count:
            total += count / n * abs(float(row["accuracy"]) - float(row["mean_confidence"]))  # type: ignore[arg-type]
    return total


def _coverage_at_precision(
    correct: np.ndarray, conf: np.ndarray, target: float
) -> tuple[float, float]:
    """Largest confidence-ranked prefix whose accuracy reaches ``target``.

    Only cut points between distinct confidences count: a threshold cannot keep half of a
    group of tied items.
    """
    order = np.argsort(-conf, kind="stable")
    c_sorted = conf[order]
    hits = np.cumsum(correct[order])
    k = np.arange(1, conf.size + 1)
    # Position i is a valid cut if the next item has a strictly lower confidence.
    valid = np.append(c_sorted[1:] < c_sorted[:-1], True)
    ok = valid & (hits >= target * k - 1e-12)
    if not ok.any():
        return 0.0, 1.0
    last = int(np.flatnonzero(ok)[-1])
    return (last + 1) / conf.size, float(c_sorted[last])


def _abstention(correct: np.ndarray, conf: np.ndarray) -> list[dict[str, float | None]]:
    rows: list[dict[str, float | None]] = []
    for t in ABSTENTION_THRESHOLDS:
        keep = conf >= t
        kept = int(keep.sum())
        rows.append(
            {
                "threshold": t,
                "coverage": kept / conf.size,
                # Accuracy of nothing is undefined, not zero.
                "accuracy": float(correct[keep].mean()) if kept else None,
            }
        )
    return rows


def _confusion(
    gold_labels: list[str], pred_labels: list[str], max_labels: int
) -> tuple[list[str], list[list[int]], list[dict[str, Any]]]:
    freq = Counter(gold_labels)
    # Ties broken by name so the matrix layout is deterministic.
    labels = [lab for lab, _ in sorted(freq.items(), key=lambda kv: (-kv[1], kv[0]))][:max_labels]
    index = {lab: i for i, lab in enumerate(labels)}
    other = len(labels)
    matrix = np.zeros((other + 1, other + 1), dtype=np.int64)
    pairs: Counter[tuple[str, str]] = Counter()
    for g, p in zip(gold_labels, pred_labels, strict=True):
        matrix[index.get(g, other), index.get(p, other)] += 1
        if g != p:
            pairs[(g, p)] += 1
    top = [
        {"gold": g, "predicted": p, "count": c}
        for (g, p), c in sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_CONFUSIONS]
    ]
    return labels, matrix.tolist(), top


def evaluate(
    gold: Sequence[Path],
    predicted: Sequence[Path],
    confidence: Sequence[float] | np.ndarray | None = None,
    *,
    max_confusion_labels: int = 20,
    precision_target: float = 0.95,
) -> EvaluationResult:
    """Score predicted category paths against gold paths.

    Args:
        gold: True paths, one per item; none may be empty.
        predicted: Predicted paths, same length as ``gold``; an empty path is an abstention
            and is wrong at every level.
        confidence: Optional confidence in [0, 1] per item, for calibration and abstention.
        max_confusion_labels: How many of the most frequent gold classes get their own
            row/column in the confusion matrix; the rest are pooled into ``"(other)"``.
        precision_target: Accuracy the confident subset must reach for
            ``coverage_at_precision``.

    Returns:
        An :class:`EvaluationResult`.

    Raises:
        ValueError: On length mismatches, empty input, empty gold paths or confidences
            outside [0, 1].
    """
    if max_confusion_labels < 1:
        raise ValueError(f"max_confusion_labels must be >= 1, got {max_confusion_labels}")
    if not 0.0 < precision_target <= 1.0:
        raise ValueError(f"precision_target must be in (0, 1], got {precision_target}")
    g, p, conf = _validate(gold, predicted, confidence)
    n = len(g)

    gold_leaf = [path_label(x) for x in g]
    pred_leaf = [path_label(x) for x in p]
    leaf_scores, per_class = _prf(gold_leaf, pred_leaf)
    # Exact path equality, not label equality: a real category named "(none)" must not
    # match an abstention.
    correct = np.fromiter((a == b for a, b in zip(g, p, strict=True)), dtype=bool, count=n)
    leaf_scores["accuracy"] = float(correct.mean())
    per_class.sort(key=lambda r: (-r["support"], r["category"]))

    metrics: dict[str, float] = dict(leaf_scores)
    metrics.update(_hierarchical(g, p))
    metrics.update(_same_branch(g, p))

    per_level: list[dict[str, float]] = []
    max_depth = max(len(x) for x in g)
    for d in range(1, max_depth + 1):
        keep = [i for i in range(n) if len(g[i]) >= d]
        scores, _ = _prf(
            [_level_label(g[i], d) for i in keep], [_level_label(p[i], d) for i in keep]
        )
        per_level.append({"level": d, "n": len(keep), **scores})
        metrics[f"accuracy_level_{d}"] = scores["accuracy"]

    labels, matrix, top = _confusion(gold_leaf, pred_leaf, max_confusion_labels)

    abstention: list[dict[str, float | None]] = []
    reliability: list[dict[str, float | int | None]] = []
    if conf is not None:
        reliability = reliability_bins(correct, conf, ECE_BINS)
        metrics["ece"] = _ece(reliability, n)
        cov, thr = _coverage_at_precision(correct, conf, precision_target)
        metrics["coverage_at_precision"] = cov
        metrics["threshold_at_precision"] = thr
        abstention = _abstention(correct, conf)

    logger.debug("evaluated %d items over %d levels", n, max_depth)
    return EvaluationResult(
        n=n,
        metrics=metrics,
        per_level=per_level,
        per_class=per_class,
        confusion_labels=labels,
        confusion_matrix=matrix,
        top_confusions=top,
        abstention=abstention,
        reliability=reliability,
        precision_target=float(precision_target),
    )
