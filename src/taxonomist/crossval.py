"""Out-of-fold probabilities: every training row scored by a model that never saw it.

The one out-of-fold machinery of the package. Ensemble weights, the choice of an ensemble's
composition, the label-noise audit and fusion's stacking all learn from these instead of a
10% validation split: every row counts, so the estimates are several times less noisy.

Folds come from `folds.group_folds` (near-duplicate titles never straddle a fold, classes are
dealt round the folds). Kinds over a frozen encoder share one in-memory copy of the
embeddings across folds, so the catalogue is encoded (or read from the on-disk cache) once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from .calibration import fit_temperature, log_softmax, softmax
from .encoders.base import Encoder, Role
from .errors import DataError
from .folds import group_folds
from .items import ModelInput
from .models.base import Progress

logger = logging.getLogger(__name__)


@dataclass
class OutOfFold:
    """Out-of-fold scores of one kind over every row.

    labels: the columns (category ids, in the taxonomy's order; the classes of the rows).
    logits: (rows, labels) raw scores of the fold model that held each row out; a class
        missing from a fold's training rows gets the row's lowest score.
    temperature: calibrates `logits` (fitted on the out-of-fold rows themselves).
    folds: each row's fold. seen: whether the row's class was among its fold's training
        classes (a class with a single group never is; such rows are left out of scores).
    """

    labels: list[str]
    logits: np.ndarray
    temperature: float
    folds: np.ndarray
    seen: np.ndarray

    @property
    def logp(self) -> np.ndarray:
        return log_softmax(self.logits, self.temperature)

    @property
    def proba(self) -> np.ndarray:
        return softmax(self.logits, self.temperature)


class MemoEncoder(Encoder):
    """Keeps every vector it has computed in memory, so k fold models over one catalogue
    encode (or read from the on-disk cache) each title once."""

    def __init__(self, inner: Encoder) -> None:
        self.inner = inner
        self.name, self.dim, self.languages = inner.name, inner.dim, inner.languages
        self._memo: dict[tuple[Role, str], np.ndarray] = {}

    def encode(self, texts, *, role=Role.PRODUCT, batch_size=64, show_progress=False):
        texts = list(texts)
        todo = list(dict.fromkeys(t for t in texts if (role, t) not in self._memo))
        if todo:
            fresh = self.inner.encode(
                todo, role=role, batch_size=batch_size, show_progress=show_progress
            )
            self._memo.update({(role, t): v for t, v in zip(todo, fresh)})
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._memo[(role, t)] for t in texts]).astype(np.float32, copy=False)

    def files(self):
        return self.inner.files()

    def _encode(self, texts, *, role, batch_size, show_progress):  # pragma: no cover
        raise NotImplementedError("MemoEncoder.encode is overridden")


def check_foldable(labels: Sequence[str], k: int, source: str = "training data") -> None:
    """Raise a clear error when `labels` cannot be cut into `k` folds."""
    if len(labels) < k:
        raise DataError(f"{source}: {len(labels)} rows, fewer than the {k} folds asked for")
    if len(set(labels)) < 2:
        only = labels[0] if len(labels) else "?"
        raise DataError(f"{source}: every row has one class ({only!r}); need at least two")


def cross_val_proba(
    kind: str,
    config: Any,
    inputs: Sequence[ModelInput],
    labels: Sequence[str],
    k: int = 5,
    *,
    taxonomy,
    seed: int = 13,
    folds: np.ndarray | None = None,
    device: str = "cpu",
    encoder: Encoder | None = None,
    progress: Progress | None = None,
) -> OutOfFold:
    """Fit `kind` (with `config`, a config object or dict) k times, each time on all folds
    but one, and score the held-out fold.

    Fold models get no validation split (none is left over); a network kind trains for its
    config's `epochs` (callers pass the count a validation split chose). `encoder` is shared
    by fold models of kinds that take one (the head); by default the config's, memoised.
    """
    from .models import model_class

    check_foldable(labels, k)
    cls = model_class(kind)
    if isinstance(config, dict):
        config = cls.config_class.from_dict(config)
    if folds is None:
        folds = group_folds(inputs, k, labels, seed)
    classes = set(labels)
    columns = [c.id for c in taxonomy if c.id in classes]
    column = {cid: j for j, cid in enumerate(columns)}
    if len(column) != len(classes):
        missing = sorted(classes - set(column))[:3]
        raise DataError(f"labels not in taxonomy '{taxonomy.name}': {missing}")
    takes_encoder = "encoder" in {f.name for f in fields(config)} and kind == "head"
    if takes_encoder and encoder is None:
        from .encoders import build_cached_encoder

        encoder = build_cached_encoder(config.encoder)
    if encoder is not None and not isinstance(encoder, MemoEncoder):
        encoder = MemoEncoder(encoder)
    logits = np.zeros((len(inputs), len(columns)))
    seen = np.zeros(len(inputs), dtype=bool)
    n_folds = int(folds.max()) + 1 if len(folds) else 0
    for fold in range(n_folds):
        held = np.flatnonzero(folds == fold).tolist()
        rest = np.flatnonzero(folds != fold).tolist()
        if not len(held):
            continue
        rest_labels = [labels[i] for i in rest]
        if len(set(rest_labels)) < 2:
            raise DataError(f"fold {fold + 1} of {n_folds} leaves a single class to train on")
        part = (  # every fold's head embeds through one memo of the encoder
            cls(taxonomy, config, encoder=encoder)  # type: ignore[call-arg]
            if takes_encoder
            else cls(taxonomy, config)
        )
        part.device = device
        part.fit([inputs[i] for i in rest], rest_labels)
        scores = part._logits(part.prepare([inputs[i] for i in held]))
        cols = [column[c] for c in part.labels]
        block = np.repeat(scores.min(1, keepdims=True), len(columns), axis=1)
        block[:, cols] = scores
        logits[held] = block
        trained = set(part.labels)
        seen[held] = [labels[i] in trained for i in held]
        if progress:
            progress(f"{kind} folds", fold + 1, n_folds)
    y = np.array([column[c] for c in labels])
    temperature = fit_temperature(logits[seen], y[seen]) if seen.any() else 1.0
    return OutOfFold(columns, logits, temperature, folds, seen)


def with_epochs(config: Any, epochs: int | None) -> Any:
    """`config` training for `epochs` (when the kind has epochs and a count is known)."""
    if epochs and "epochs" in {f.name for f in fields(config)}:
        return replace(config, epochs=int(epochs))
    return config


@dataclass
class PooledOutOfFold:
    """A preset's out-of-fold probabilities: its members', pooled as its ensemble would."""

    labels: list[str]
    proba: np.ndarray
    folds: np.ndarray
    seen: np.ndarray
    members: list[str]
    weights: list[float]
    selection: dict[str, Any] | None = None


def preset_out_of_fold(
    inputs: Sequence[ModelInput],
    labels: Sequence[str],
    taxonomy,
    *,
    preset: str = "fast",
    k: int = 5,
    seed: int = 13,
    progress: Progress | None = None,
) -> PooledOutOfFold:
    """Out-of-fold probabilities of `preset`'s model over every row: a single kind directly;
    an ensemble's members each out of fold, then pooled with the composition and weights
    `selection.select_composition` picks on those same scores (the audit and the active
    learner need probabilities for rows no model saw, not a trained model)."""
    from .selection import select_composition
    from .training import resolve_kind

    check_foldable(labels, k)
    kind, config = resolve_kind(preset, None, {"seed": seed})
    members = list(config.members) if kind == "ensemble" else [(kind, config)]
    folds = group_folds(inputs, k, labels, seed)
    oofs = [
        cross_val_proba(
            member_kind,
            member_config,
            inputs,
            labels,
            k,
            taxonomy=taxonomy,
            folds=folds,
            progress=progress,
        )  # fmt: skip
        for member_kind, member_config in members
    ]
    columns = oofs[0].labels
    seen = np.logical_and.reduce([o.seen for o in oofs])
    names = [f"{i + 1}-{m}" for i, (m, _) in enumerate(members)]
    if len(oofs) == 1:
        return PooledOutOfFold(columns, oofs[0].proba, folds, seen, names, [1.0])
    column = {cid: j for j, cid in enumerate(columns)}
    y = np.array([column[c] for c in labels])
    logps = [o.logp for o in oofs]
    chosen = select_composition(logps, y, folds, names, mask=seen, seed=seed)
    pooled = log_softmax(sum(w * lp for w, lp in zip(chosen.weights, logps) if w > 0))
    return PooledOutOfFold(
        columns, np.exp(pooled), folds, seen, names, [float(w) for w in chosen.weights],
        chosen.as_dict(),
    )  # fmt: skip
