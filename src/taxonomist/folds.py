"""The one way the package cuts rows into a validation split or k folds.

Rows whose titles normalise to the same key (`items.group_key`) are near-duplicates: letting
them straddle a split would make every held-out score (early stopping, calibration, ensemble
weights, out-of-fold probabilities, the label audit) optimistic. Both cutters keep each such
group on one side, and both are a pure function of the rows and the seed, so they are stable
across runs and machines.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from .errors import ConfigError
from .items import ModelInput, group_key


def group_unit(item: ModelInput, seed: int) -> float:
    """A number in [0, 1) that is the same for every row of a group (and the seed)."""
    digest = hashlib.sha1(f"{seed}:{group_key(item)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def group_split(
    texts: Sequence[ModelInput], fraction: float = 0.1, seed: int = 13
) -> tuple[list[int], list[int]]:
    """Row indices (train, valid), with every group of near-duplicate titles on one side."""
    if not 0 < fraction < 1:
        raise ConfigError(f"validation fraction must be in (0, 1), got {fraction}")
    train: list[int] = []
    valid: list[int] = []
    for i, text in enumerate(texts):
        (valid if group_unit(text, seed) < fraction else train).append(i)
    return train, valid


def group_folds(
    inputs: Sequence[ModelInput],
    k: int,
    labels: Sequence[str] | None = None,
    seed: int = 13,
) -> np.ndarray:
    """The fold (0..k-1) of every row: groups never straddle folds, and with `labels` the
    groups of each class are dealt round the folds in turn (stratified), so a class with k
    or more groups has rows to learn from in every fold.

    A group's class is its first row's label; the order in which a class's groups are dealt
    is their hash order, so the folds depend only on the rows and the seed.
    """
    if k < 2:
        raise ConfigError(f"folds must be at least 2, got {k}")
    keys = [group_key(x) for x in inputs]
    units = [group_unit(x, seed) for x in inputs]
    if labels is None:
        return np.array([int(u * k) for u in units], dtype=np.int64)
    first: dict[str, int] = {}
    for i, key in enumerate(keys):
        first.setdefault(key, i)
    by_class: dict[str, list[str]] = defaultdict(list)
    for key, i in first.items():
        by_class[labels[i]].append(key)
    fold_of: dict[str, int] = {}
    # each class starts where its hash says, so the small classes do not all pile on fold 0
    for cls, groups in by_class.items():
        groups.sort(key=lambda g: units[first[g]])
        start = int(hashlib.sha1(f"{seed}:{cls}".encode()).digest()[0]) % k
        for n, g in enumerate(groups):
            fold_of[g] = (start + n) % k
    return np.array([fold_of[key] for key in keys], dtype=np.int64)
