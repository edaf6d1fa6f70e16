"""Random search over a preset's hyper-parameters within a time budget.

Each trial trains on the training split and is scored on the validation split; the first
trial is always the preset's own settings. A later trial replaces the incumbent only when it
is better beyond noise: its per-row validation log-loss is lower over the same rows with a
paired z above `selection.Z_ACCEPT` (a random search that keeps whatever scores best on one
split keeps its luck), and it makes no more validation errors (the rule `selection`
follows). Ensemble trials choose their own composition out of fold. The winner is saved like
any model, with every trial's score and the rule in its manifest.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import progress
from .errors import ConfigError
from .items import ModelInput, has_images
from .models import Model, model_class
from .selection import Z_ACCEPT, paired_z
from .training import cut_validation, plot_training_curve, resolve_kind

logger = logging.getLogger(__name__)

TUNE_RULE = (
    "trial 1 is the preset; a later trial replaces the incumbent only if its mean per-row "
    f"validation log-loss is lower with a paired z > {Z_ACCEPT} over the same rows and it "
    "makes no more validation errors"
)

Sampler = Callable[[np.random.Generator], Any]


def _log_uniform(lo: float, hi: float) -> Sampler:
    return lambda rng: float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def _choice(*options: Any) -> Sampler:
    return lambda rng: options[int(rng.integers(len(options)))]


SPACES: dict[str, dict[str, Sampler]] = {
    "linear": {
        "C": _log_uniform(0.05, 5.0),
        "classifier": _choice("svm", "logreg"),
        "char_ngrams": _choice((2, 5), (1, 4), (2, 6), (3, 5)),
        "min_df": _choice(1, 2),
        "balance": _choice(False, True),
    },
    "knn": {
        "max_df": _choice(0.0005, 0.001, 0.002, 0.005, 1.0),
        "k": _choice(5, 10, 20),
        "power": _choice(1.0, 2.0, 4.0),
    },
    "head": {
        "hidden": _choice(0, 256, 512, 1024),
        "lr": _log_uniform(3e-4, 5e-3),
        "dropout": _choice(0.1, 0.2, 0.3, 0.4),
        "weight_decay": _log_uniform(1e-5, 1e-2),
        "balance": _choice(False, True),
    },
    "finetune": {
        "lr": _log_uniform(2e-5, 1e-4),
        "epochs": _choice(2, 3, 4),
        "dropout": _choice(0.1, 0.2),
        "adversarial": _choice(None, "fgm"),
    },
    "image": {
        "hidden": _choice(0, 512, 1024),
        "lr": _log_uniform(5e-4, 5e-3),
        "dropout": _choice(0.2, 0.3, 0.4, 0.5),
        "balance": _choice(False, True),
    },
    "fusion": {
        "mode": _choice("late", "both"),  # the rest shape the early network of `both`
        "hidden": _choice(256, 512, 1024),
        "lr": _log_uniform(5e-4, 5e-3),
        "dropout": _choice(0.2, 0.3, 0.4),
        "modality_dropout": _choice(0.1, 0.2, 0.3, 0.5),
        "balance": _choice(False, True),
    },
}


def _sample(kind: str, base: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    """`base` with every setting of the kind's space drawn afresh (C is drawn for either
    linear classifier: both take it)."""
    return {**base, **{k: sample(rng) for k, sample in SPACES.get(kind, {}).items()}}


@dataclass
class TuneResult:
    model: Model
    path: Path
    trials: list[dict[str, Any]] = field(default_factory=list)


def tune(
    texts: list[ModelInput],
    labels: list[str],
    taxonomy,
    out_dir: str | Path,
    *,
    preset: str = "balanced",
    kind: str | None = None,
    time_budget_s: float = 600.0,
    max_trials: int = 50,
    seed: int = 13,
    valid_texts: list[ModelInput] | None = None,
    valid_labels: list[str] | None = None,
    on_trial: Callable[[dict[str, Any]], None] | None = None,
    device: str = "cpu",
) -> TuneResult:
    """Search `preset`'s space for `time_budget_s` seconds and save the best model."""
    if time_budget_s <= 0:
        raise ConfigError(f"time budget must be positive, got {time_budget_s}")
    if valid_texts is None:
        texts, labels, valid_texts, valid_labels = cut_validation(texts, labels, 0.1, seed)
    assert valid_texts is not None and valid_labels is not None
    if kind is None and has_images(texts):
        kind = "fusion"
    chosen, base = resolve_kind(preset, kind, {})
    if chosen not in SPACES and chosen != "ensemble":
        # every trial would be trial 1 again, until the budget ran out
        raise ConfigError(
            f"kind {chosen!r} has nothing for tune to search: it chooses its own settings by "
            "cross-validation on the labelled rows; train it with `train --kind "
            f"{chosen}`"
        )
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    best: Model | None = None
    best_loss: np.ndarray | None = None
    best_errors = 0
    trials: list[dict[str, Any]] = []
    for trial in range(max_trials):
        if trial and time.perf_counter() - started > time_budget_s:
            break
        cls = model_class(chosen)
        if trial == 0:
            config = base
        elif chosen == "ensemble":
            members = tuple((k, _sample(k, dict(c), rng)) for k, c in base.members)
            config = cls.config_class.from_dict({"members": members})
        else:
            from dataclasses import asdict

            config = cls.config_class.from_dict(_sample(chosen, asdict(base), rng))
        model = cls(taxonomy, config)
        model.device = device
        t0 = time.perf_counter()
        # a trial's stages (epochs...) reach whoever listens (the CLI's progress lines)
        report = model.fit(texts, labels, valid_texts, valid_labels, progress=progress.report)
        metrics = report.valid_metrics
        row = {
            "trial": trial + 1,
            "seconds": round(time.perf_counter() - t0, 1),
            "valid_accuracy": metrics.get("accuracy", 0.0),
            "valid_log_loss": metrics.get("log_loss", 0.0),
            "config": _jsonable(getattr(config, "__dict__", {})),
        }
        trials.append(row)
        if on_trial:
            on_trial(row)
        loss, right = _row_scores(model, valid_texts, valid_labels)
        errors = int((~right).sum())
        row["valid_errors"] = errors
        if best_loss is None:
            row["verdict"] = "first incumbent"
        else:
            z = paired_z(best_loss, loss)
            row["z_vs_incumbent"] = round(z, 2) if np.isfinite(z) else z
            row["verdict"] = (
                "rejected: log-loss not better beyond noise"
                if z <= Z_ACCEPT
                else "rejected: more validation errors"
                if errors > best_errors
                else "kept: better beyond noise"
            )
        if best_loss is None or row["verdict"].startswith("kept"):
            best, best_loss, best_errors = model, loss, errors
    assert best is not None
    path = best.save(
        out_dir,
        extra={
            "preset": preset,
            "tuning": {"time_budget_s": time_budget_s, "rule": TUNE_RULE, "trials": trials},
        },
    )
    plot_training_curve(best, Path(path) / "training_curve.png")
    return TuneResult(best, Path(path), trials)


def _row_scores(
    model: Model, texts: list[ModelInput], labels: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Per-row validation log-loss and whether the top class is right (rows whose class the
    model never saw are left out: they cost every trial the same)."""
    column = {cid: j for j, cid in enumerate(model.labels)}
    keep = [i for i, label in enumerate(labels) if label in column]
    proba = model.predict_proba([texts[i] for i in keep])
    y = np.array([column[labels[i]] for i in keep])
    loss = -np.log(np.clip(proba[np.arange(len(keep)), y], 1e-12, None))
    return loss, proba.argmax(1) == y


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value
