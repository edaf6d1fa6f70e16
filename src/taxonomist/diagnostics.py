"""Diagnoses for results that look wrong for a reason other than the model: labels joined
by another separator than the one given, gold labels from another taxonomy. Each returns (or
logs) one message that names the likely cause and the option that fixes it."""

from __future__ import annotations

import logging
from pathlib import Path

from .data import ColumnSpec
from .data.readers import read_labels
from .errors import TaxonomistError
from .taxonomy import Taxonomy, _norm
from .taxonomy_loaders import guess_label_separator

logger = logging.getLogger(__name__)


def warn_about_label_separator(labels: list[str], separator: str, path: str | Path) -> None:
    """Warn when labels look like paths joined by another separator than `separator`: they
    would otherwise train flat, one-level labels without a word said."""
    other = guess_label_separator(labels, separator)
    if other is not None:
        example = next((x for x in labels if other in x), "")
        logger.warning(
            "%s: labels look like paths joined by '%s' (e.g. '%s'), but levels are split "
            "on '%s'; pass --label-separator '%s' to train a hierarchy",
            path,
            other,
            example,
            separator,
            other,
        )


# Below this share of predictions that agree with gold even on the top level, the two
# files almost surely speak different taxonomies or separators rather than a weak model.
TOP_LEVEL_AGREEMENT_FLOOR = 0.05


def separator_hint(path: Path, columns: ColumnSpec) -> str:
    try:
        labels = read_labels(path, columns)
    except TaxonomistError:
        return ""
    other = guess_label_separator(labels, columns.label_separator)
    if other is None:
        return ""
    example = next((x for x in labels if other in x), "")
    return (
        f"; the gold labels look like paths joined by '{other}' (e.g. '{example}'): "
        f"pass --label-separator '{other}'"
    )


def no_gold_labels_message(path: Path, columns: ColumnSpec, tax: Taxonomy, bad: int) -> str:
    hint = separator_hint(path, columns)
    return f"none of the gold labels is a category of taxonomy '{tax.name}' ({bad} bad rows)" + (
        hint
        or "; are they from another taxonomy? Without --taxonomy the gold file's own "
        "paths are the taxonomy"
    )


def mismatch_warnings(
    gold: list[tuple[str, ...]],
    pred: list[tuple[str, ...]],
    gold_path: Path,
    columns: ColumnSpec,
    tax: Taxonomy,
) -> list[str]:
    """A warning when almost no prediction shares even its top level with the gold label."""
    answered = [(g, p) for g, p in zip(gold, pred) if p]
    if len(answered) < 5:
        return []
    agree = sum(1 for g, p in answered if _norm(g[0]) == _norm(p[0]))
    if agree > TOP_LEVEL_AGREEMENT_FLOOR * len(answered):
        return []
    gold_tops = sorted({g[0] for g, _ in answered})[:3]
    pred_tops = sorted({p[0] for _, p in answered})[:3]
    hint = separator_hint(gold_path, columns) or (
        "; the predictions and the gold labels seem to come from different taxonomies "
        "(or levels are joined differently: see --label-separator)"
    )
    return [
        f"only {agree} of {len(answered)} predictions share even the top level with the gold "
        f"label (gold e.g. {gold_tops}, predicted e.g. {pred_tops}){hint}"
    ]
