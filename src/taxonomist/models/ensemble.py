"""`ensemble`: several kinds trained on the same data, pooled with weights learned out of fold.

Pooling is log-linear (a weighted sum of calibrated log-probabilities), which rewards members
that are confident and right; the weights minimise log-loss over a simplex grid.

With `folds` >= 2 (the default) every member is also trained k times on grouped folds of the
training rows (`crossval.cross_val_proba`), and its out-of-fold scores over *every* training
row calibrate it, choose which members the ensemble keeps and learn their weights
(`selection.select_composition`: the simpler composition stays unless a richer one is better
beyond noise). A 10% validation split had chosen weights that did not carry over to unseen
catalogues (the pool came out worse than its own linear member). With `folds` = 0 the
weights are learned on the validation split, as before, and every member is kept.
that are confident and right; the weights minimise validation log-loss over a simplex grid.

Cascade: the members that read TF-IDF n-grams (`linear`, `knn`) cost microseconds a product;
an encoder member (`head`, ...) costs a transformer pass. Most products are easy, and on them
the cheap members, pooled alone, already give the full ensemble's answer. So on validation the
ensemble also learns a confidence threshold: the lowest at which answering every product above
it from the cheap members alone costs at most `cascade_max_drop` of accuracy. With the cascade
on (`cascade=True` in the config, or `predict(..., cascade=True)` / `classify --cascade`),
only the products below it go through the encoder.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..calibration import log_softmax
from ..errors import ConfigError, DataError
from .base import Model, Progress
from .config import config_from_dict


@dataclass(frozen=True)
class EnsembleConfig:
    """Args:
    members: (kind, config dict) pairs, e.g. (("linear", {}), ("head", {"hidden": 512})),
        simplest (and cheapest) first: selection prefers the earlier ones.
    grid_step: resolution of the weight search on the simplex.
    folds: out-of-fold selection and weights over this many grouped folds (0: weights on the
        validation split, every member kept).
    seed: of the folds.
    cascade: predict with the cascade by default (see the module docstring).
    cascade_max_drop: the validation accuracy the cascade may cost (0.001: 0.1 point).
    """

    members: tuple[tuple[str, dict[str, Any]], ...] = (("linear", {}), ("head", {}))
    grid_step: float = 0.05
    folds: int = 5
    seed: int = 13
    cascade: bool = False
    cascade_max_drop: float = 0.001

    def __post_init__(self) -> None:
        if len(self.members) < 2:
            raise ConfigError("an ensemble needs at least two members")
        if any(kind == "ensemble" for kind, _ in self.members):
            raise ConfigError("ensembles cannot nest")
        if not 0 < self.grid_step <= 0.5:
            raise ConfigError(f"ensemble.grid_step must be in (0, 0.5], got {self.grid_step}")
        if self.folds < 0 or self.folds == 1:
            raise ConfigError(f"ensemble.folds must be 0 or >= 2, got {self.folds}")
        if not 0 <= self.cascade_max_drop < 1:
            raise ConfigError(
                f"ensemble.cascade_max_drop must be in [0, 1), got {self.cascade_max_drop}"
            )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EnsembleConfig:
        data = dict(data)
        if "members" in data:
            data["members"] = tuple((str(k), dict(c)) for k, c in data["members"])
        return config_from_dict(cls, data)


def simplex_grid(n: int, step: float) -> np.ndarray:
    ticks = int(round(1 / step))
    points = [p for p in itertools.product(range(ticks + 1), repeat=n) if sum(p) == ticks]
    return np.array(points, dtype=np.float64) / ticks


def fit_weights(
    member_logp: list[np.ndarray],
    y: np.ndarray,
    step: float,
    *,
    pool: Callable[[np.ndarray], np.ndarray] | None = None,
    usable: Sequence[int] | None = None,
) -> np.ndarray:
    """The simplex point whose pooled log-probabilities give the lowest log-loss on `y`.

    The one weight search of the package (ensemble and fusion). `pool(weights)` returns
    pooled log-probabilities (default: the weighted sum of `member_logp`, renormalised);
    members outside `usable` keep weight 0 (fusion's image member once photos are hidden).
    """
    n = len(member_logp)
    free = np.arange(n) if usable is None else np.asarray(list(usable), dtype=np.int64)
    rows = np.arange(len(y))
    best, best_loss = np.zeros(n), float("inf")
    best[free] = 1 / max(len(free), 1)
    for sub in simplex_grid(len(free), step):
        w = np.zeros(n)
        w[free] = sub
        if pool is None:
            summed = sum(wi * lp for wi, lp in zip(w, member_logp) if wi > 0)
            pooled = log_softmax(np.asarray(summed))
        else:
            pooled = pool(w)
        loss = float(-pooled[rows, y].mean())
        if loss < best_loss:
            best, best_loss = w, loss
    return best


# kinds that run an encoder (a transformer or an image network) for every product
ENCODING_KINDS = frozenset({"head", "finetune", "image", "fusion"})


def pooled_logp(weights: np.ndarray, member_logp: list[np.ndarray]) -> np.ndarray:
    """Log-linear pool of member log-probabilities, weights renormalised to sum to one."""
    total = float(sum(weights))
    if total <= 0:
        weights, total = np.ones(len(member_logp)), float(len(member_logp))
    return log_softmax(sum((w / total) * lp for w, lp in zip(weights, member_logp)))


def pool_members(
    inputs: list[Any],
    weights: np.ndarray,
    member_logp: Callable[[int, list[Any]], np.ndarray],
    *,
    cheap: list[int],
    threshold: float | None,
    temperature: float,
    stats: dict[str, int],
) -> np.ndarray:
    """An ensemble's logits: the weighted sum of its members' log-probabilities
    (`member_logp(i, inputs)`). With a cascade `threshold` (None: no cascade), a row on which
    the pool of the `cheap` members is at least that confident answers from that pool alone,
    and only the other rows go through the rest; `stats` counts both. `EnsembleModel` and its
    ONNX export both pool here, so that they agree step for step."""
    used = [i for i, w in enumerate(weights) if w > 0]
    if threshold is None:
        return sum(weights[i] * member_logp(i, inputs) for i in used)
    cheap_parts = {i: member_logp(i, inputs) for i in cheap}
    cheap_logp = pooled_logp(weights[cheap], [cheap_parts[i] for i in cheap])
    hard = np.flatnonzero(np.exp(cheap_logp.max(1)) < threshold)
    # an easy row answers with the cheap pool's probabilities: scaled by the ensemble's
    # temperature, which the calibration divides out again
    out = temperature * cheap_logp
    if len(hard):
        subset = [inputs[j] for j in hard]
        out[hard] = sum(
            weights[i] * (cheap_parts[i][hard] if i in cheap_parts else member_logp(i, subset))
            for i in used
        )
    stats["cheap"] += len(inputs) - len(hard)
    stats["encoded"] += len(hard)
    return out


def cascade_threshold(
    cheap_logp: np.ndarray, full_logp: np.ndarray, y: np.ndarray, max_drop: float
) -> float:
    """The lowest confidence threshold at which answering every row whose cheap confidence
    reaches it from `cheap_logp` (the rest from `full_logp`) keeps validation accuracy
    within `max_drop` of `full_logp`'s. 1.0 (never trust the cheap pool alone) if no lower
    one does; above 1.0 the cascade is off.

    The threshold lies halfway between the two confidences it splits (below the lowest:
    halfway to 1/classes, the least a top probability can be), not on a row's own
    confidence: a row exactly on it would change stage on float noise, e.g. in an ONNX
    export whose float32 graphs agree with the original only to ~1e-7.
    """
    cheap_ok = cheap_logp.argmax(1) == y
    full_ok = full_logp.argmax(1) == y
    conf = np.exp(cheap_logp.max(1))
    order = np.argsort(-conf, kind="stable")
    # accuracy with the k most confident rows answered cheaply, for every k
    gain = np.concatenate([[0], np.cumsum(cheap_ok[order].astype(int) - full_ok[order])])
    allowed = full_ok.sum() - max_drop * len(y) - 1e-9
    best = 1.0 + 1e-9  # no row below "above 1": nothing skips the encoder
    for k in range(1, len(y) + 1):
        # a threshold can only split between distinct confidences
        if k < len(y) and conf[order[k]] == conf[order[k - 1]]:
            continue
        if full_ok.sum() + gain[k] >= allowed:
            below = conf[order[k]] if k < len(y) else 1 / cheap_logp.shape[1]
            best = float((conf[order[k - 1]] + below) / 2)
    return best


class EnsembleModel(Model):
    kind = "ensemble"
    config_class = EnsembleConfig
    uses_images = True  # passes products through; each member takes what it can use

    def __init__(self, taxonomy, config: EnsembleConfig | None = None) -> None:
        super().__init__(taxonomy, config)
        self.members: list[Model] = []
        self.weights = np.ones(len(self.config.members)) / len(self.config.members)
        self.selection: dict[str, Any] | None = None
        # the cascade's threshold, learned on validation; None: no cascade (an old model,
        # or no cheap and no encoding member)
        self.cascade_threshold: float | None = None
        self.cascade = self.config.cascade  # on for this instance's predictions
        self.cascade_stats = {"cheap": 0, "encoded": 0}  # rows answered by each stage

    def fit(self, *args: Any, **kwargs: Any):
        # validation scores (and the temperature fitted on them) are the full pool's
        cascade, self.cascade = self.cascade, False
        try:
            return super().fit(*args, **kwargs)
        finally:
            self.cascade = cascade

    def _fit(self, texts, y, valid_texts, valid_y, progress: Progress | None):
        from . import model_class

        if not valid_texts:
            raise DataError("an ensemble learns its weights on a validation split; none was given")
        labels = [self.labels[i] for i in y]
        valid_labels = [self.labels[i] for i in valid_y]
        self.members = []
        history: list[dict[str, float]] = []
        for n, (kind, member_config) in enumerate(self.config.members, start=1):
            cls = model_class(kind)
            member = cls(self.taxonomy, cls.config_class.from_dict(member_config))
            member.use_settings_of(self)
            report = member.fit(texts, labels, valid_texts, valid_labels, progress=progress)
            if member.labels != self.labels:
                raise DataError("ensemble members disagree on the label set")  # defensive
            self.members.append(member)
            history.append(
                {
                    "member": n,
                    **{
                        f"valid_{k}": v
                        for k, v in report.valid_metrics.items()
                        if k in ("accuracy", "log_loss")
                    },
                }
            )
        if self.config.folds >= 2:
            history.append(self._select_out_of_fold(texts, y, progress))
            # the cascade is learned on validation over the members selection kept
            self._learn_cascade(
                [
                    log_softmax(m._logits(m.prepare(valid_texts)), m.temperature)
                    for m in self.members
                ],
                valid_y,
            )
            return history
        member_logp = [
            log_softmax(m._logits(m.prepare(valid_texts)), m.temperature) for m in self.members
        ]
        self.weights = best = fit_weights(member_logp, valid_y, self.config.grid_step)
        self._learn_cascade(member_logp, valid_y)
        history.append(
            {
                "weights": float(len(best)),
                **{f"weight_{i + 1}": float(w) for i, w in enumerate(best)},
            }
        )
        return history

    def _select_out_of_fold(self, texts, y, progress) -> dict[str, float]:
        """Calibrate each member on its out-of-fold scores, keep the composition that earns
        its place, and learn its weights on every training row."""
        from ..crossval import cross_val_proba, with_epochs
        from ..folds import group_folds
        from ..selection import select_composition

        labels = [self.labels[i] for i in y]
        folds = group_folds(texts, self.config.folds, labels, self.config.seed)
        member_logp, mask = [], np.ones(len(y), dtype=bool)
        for member in self.members:
            oof = cross_val_proba(
                member.kind, with_epochs(member.config, getattr(member, "best_epoch", None)),
                texts, labels, self.config.folds, taxonomy=self.taxonomy, folds=folds,
                device=self.device, encoder=getattr(member, "_encoder", None),
                progress=progress,
            )  # fmt: skip
            if oof.labels != self.labels:
                raise DataError("out-of-fold columns disagree with the label set")  # defensive
            member.temperature = oof.temperature  # every row calibrates, not 10% of them
            member_logp.append(oof.logp)
            mask &= oof.seen
        names = [f"{i + 1}-{m.kind}" for i, m in enumerate(self.members)]
        chosen = select_composition(
            member_logp, y, folds, names, step=self.config.grid_step, mask=mask,
            seed=self.config.seed,
        )  # fmt: skip
        self.selection = {**chosen.as_dict(), "folds": self.config.folds, "rows": int(mask.sum())}
        self.members = [self.members[i] for i in chosen.chosen]
        self.weights = chosen.weights[list(chosen.chosen)]
        return {
            "selected_members": float(len(self.members)),
            **{f"weight_{n}": float(chosen.weights[i]) for i, n in enumerate(names)},
        }

    def _refit(self, texts, y, progress):
        labels = [self.labels[i] for i in y]
        for member in self.members:
            member.refit_full(texts, labels, progress=progress)

    # -- the cascade ----------------------------------------------------------------------
    def _cheap_members(self) -> list[int]:
        return [
            i
            for i, (w, m) in enumerate(zip(self.weights, self.members))
            if w > 0 and m.kind not in ENCODING_KINDS
        ]

    def _learn_cascade(self, member_logp: list[np.ndarray], y: np.ndarray) -> None:
        cheap = self._cheap_members()
        used = [i for i, w in enumerate(self.weights) if w > 0]
        if not cheap or len(cheap) == len(used):  # nothing to skip, or nothing cheap
            self.cascade_threshold = None
            return
        full = log_softmax(sum(self.weights[i] * member_logp[i] for i in used))
        cheap_logp = pooled_logp(self.weights[cheap], [member_logp[i] for i in cheap])
        self.cascade_threshold = cascade_threshold(
            cheap_logp, full, y, self.config.cascade_max_drop
        )

    def _member_logp(self, index: int, texts: list[Any]) -> np.ndarray:
        member = self.members[index]
        return log_softmax(member._logits(member.prepare(texts)), member.temperature)

    def _logits(self, texts):
        on = self.cascade and self.cascade_threshold is not None
        return pool_members(
            texts,
            self.weights,
            self._member_logp,
            cheap=self._cheap_members() if on else [],
            threshold=self.cascade_threshold if on else None,
            temperature=self.temperature,
            stats=self.cascade_stats,
        )

    def _manifest_extra(self) -> dict[str, Any]:
        return {
            "weights": [float(w) for w in self.weights],
            "members": [f"members/{i}-{m.kind}" for i, m in enumerate(self.members)],
            # every candidate's out-of-fold score and the rule that chose among them
            "selection": self.selection,
            "cascade_threshold": self.cascade_threshold,
        }

    def _save(self, directory: Path) -> None:
        for i, member in enumerate(self.members):
            member.save(directory / "members" / f"{i}-{member.kind}")

    def _load(self, directory: Path, manifest: dict[str, Any]) -> None:
        from .base import load_model

        self.weights = np.array(manifest["weights"], dtype=np.float64)
        self.selection = manifest.get("selection")
        self.members = [
            load_model(
                directory / sub, self.device, cache_dir=self.cache_dir, use_cache=self.use_cache
            )
            for sub in manifest["members"]
        ]
        threshold = manifest.get("cascade_threshold")
        self.cascade_threshold = None if threshold is None else float(threshold)
