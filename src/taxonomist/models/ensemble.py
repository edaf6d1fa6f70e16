"""`ensemble`: several kinds trained on the same data, pooled with weights learned on the
validation split.

Pooling is log-linear (a weighted sum of calibrated log-probabilities), which rewards members
that are confident and right; the weights minimise validation log-loss over a simplex grid.
"""

from __future__ import annotations

import itertools
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
    members: (kind, config dict) pairs, e.g. (("linear", {}), ("head", {"hidden": 512})).
    grid_step: resolution of the weight search on the simplex.
    """

    members: tuple[tuple[str, dict[str, Any]], ...] = (("linear", {}), ("head", {}))
    grid_step: float = 0.05

    def __post_init__(self) -> None:
        if len(self.members) < 2:
            raise ConfigError("an ensemble needs at least two members")
        if any(kind == "ensemble" for kind, _ in self.members):
            raise ConfigError("ensembles cannot nest")
        if not 0 < self.grid_step <= 0.5:
            raise ConfigError(f"ensemble.grid_step must be in (0, 0.5], got {self.grid_step}")

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


def fit_weights(member_logp: list[np.ndarray], y: np.ndarray, step: float) -> np.ndarray:
    """The simplex point whose pooled log-probabilities give the lowest log-loss on `y`."""
    rows = np.arange(len(y))
    best, best_loss = np.ones(len(member_logp)) / len(member_logp), float("inf")
    for w in simplex_grid(len(member_logp), step):
        pooled = log_softmax(sum(wi * lp for wi, lp in zip(w, member_logp)))
        loss = float(-pooled[rows, y].mean())
        if loss < best_loss:
            best, best_loss = w, loss
    return best


class EnsembleModel(Model):
    kind = "ensemble"
    config_class = EnsembleConfig
    uses_images = True  # passes products through; each member takes what it can use

    def __init__(self, taxonomy, config: EnsembleConfig | None = None) -> None:
        super().__init__(taxonomy, config)
        self.members: list[Model] = []
        self.weights = np.ones(len(self.config.members)) / len(self.config.members)

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
        member_logp = [
            log_softmax(m._logits(m.prepare(valid_texts)), m.temperature) for m in self.members
        ]
        self.weights = best = fit_weights(member_logp, valid_y, self.config.grid_step)
        history.append(
            {
                "weights": float(len(best)),
                **{f"weight_{i + 1}": float(w) for i, w in enumerate(best)},
            }
        )
        return history

    def _refit(self, texts, y, progress):
        labels = [self.labels[i] for i in y]
        for member in self.members:
            member.refit_full(texts, labels, progress=progress)

    def _logits(self, texts):
        return sum(
            w * log_softmax(m._logits(m.prepare(texts)), m.temperature)
            for w, m in zip(self.weights, self.members)
            if w > 0
        )

    def _manifest_extra(self) -> dict[str, Any]:
        return {
            "weights": [float(w) for w in self.weights],
            "members": [f"members/{i}-{m.kind}" for i, m in enumerate(self.members)],
        }

    def _save(self, directory: Path) -> None:
        for i, member in enumerate(self.members):
            member.save(directory / "members" / f"{i}-{member.kind}")

    def _load(self, directory: Path, manifest: dict[str, Any]) -> None:
        from .base import load_model

        self.weights = np.array(manifest["weights"], dtype=np.float64)
        self.members = [
            load_model(
                directory / sub, self.device, cache_dir=self.cache_dir, use_cache=self.use_cache
            )
            for sub in manifest["members"]
        ]
