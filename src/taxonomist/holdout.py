"""The frozen holdout of a model store: products cut aside when a name's first version is
trained, which no version of that name ever trains on. Retraining (`taxonomist retrain`)
compares the current version and a candidate on it.

Stored as `<store>/<name>/holdout.csv` (text, category_id). Products are assigned by a hash
of their normalised title, so identical titles stay together, and any later training data
is filtered against the file: a product whose title is in the holdout is never trained on.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

from .items import ModelInput, as_texts, group_key
from .persistence import write_csv_rows
from .training import group_split

logger = logging.getLogger(__name__)

HOLDOUT_FILE = "holdout.csv"
HOLDOUT_FRACTION = 0.1  # of a catalogue; a small one gives up to 30% to reach ~15 rows
HOLDOUT_SEED = 7919  # not the validation split's seed: the two cuts must be independent
MIN_HOLDOUT_ROWS = 10


def holdout_path(store_root: str | Path, name: str) -> Path:
    return Path(store_root) / name / HOLDOUT_FILE


def read_holdout(store_root: str | Path, name: str) -> list[tuple[str, str]]:
    """(text, category id) rows of the name's holdout; empty when it has none."""
    path = holdout_path(store_root, name)
    if not path.exists():
        return []
    with open(path, encoding="utf-8", newline="") as handle:
        return [(r["text"], r["category_id"]) for r in csv.DictReader(handle)]


def freeze_holdout(
    store_root: str | Path,
    name: str,
    texts: list[ModelInput],
    labels: list[str],
    valid_texts: list[ModelInput] | None = None,
    valid_labels: list[str] | None = None,
    *,
    first_version: bool,
) -> tuple[list[ModelInput], list[str], list[ModelInput] | None, list[str] | None]:
    """Training data for a new version of `name`, without the holdout's products.

    For the name's first version (and no holdout yet) the holdout is cut from these rows
    and written; later versions only have it filtered out. Too little data for a holdout
    of `MIN_HOLDOUT_ROWS` leaves the name without one (retraining then says so).
    """
    path = holdout_path(store_root, name)
    if not path.exists() and first_version:
        rows = list(zip(texts, labels)) + list(zip(valid_texts or [], valid_labels or []))
        fraction = min(0.3, max(HOLDOUT_FRACTION, 15 / max(len(rows), 1)))
        keep, held = group_split([r[0] for r in rows], fraction, HOLDOUT_SEED)
        if len(held) < MIN_HOLDOUT_ROWS:
            logger.warning(
                "%s: only %d rows would form the frozen holdout (need %d); none is cut, "
                "so this name cannot be retrained with a gate",
                name,
                len(held),
                MIN_HOLDOUT_ROWS,
            )
            return texts, labels, valid_texts, valid_labels
        held_texts = as_texts([rows[i][0] for i in held])
        write_csv_rows(
            path, ["text", "category_id"], [(t, rows[i][1]) for t, i in zip(held_texts, held)]
        )
        logger.info("%s: froze a holdout of %d products (%s)", name, len(held), path)
    frozen = {group_key(t) for t, _ in read_holdout(store_root, name)}
    if not frozen:
        return texts, labels, valid_texts, valid_labels

    def drop(xs: list[ModelInput], ys: list[str]) -> tuple[list[ModelInput], list[str]]:
        kept = [(x, y) for x, y in zip(xs, ys) if group_key(x) not in frozen]
        return [k[0] for k in kept], [k[1] for k in kept]

    texts, labels = drop(texts, labels)
    if valid_texts is not None and valid_labels is not None:
        valid_texts, valid_labels = drop(valid_texts, valid_labels)
    return texts, labels, valid_texts, valid_labels


def in_holdout(store_root: str | Path, name: str) -> set[str]:
    """Group keys (normalised titles) of the holdout's products."""
    return {group_key(t) for t, _ in read_holdout(store_root, name)}
