"""Training orchestration: presets, the validation split, fitting, the training curve.

A model is not its trainer: kinds know how to fit themselves; this module decides which kind,
with which settings, on which rows, and what to record beside the weights.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path
from typing import Any

from .errors import ConfigError, DataError
from .folds import group_split
from .items import ModelInput, has_images
from .languages import LanguagePlan, plan_for
from .models import Model, model_class
from .routing import check_precision_target

logger = logging.getLogger(__name__)

MIN_VALID_ROWS = 10


class Preset(str, Enum):
    """Kinds and settings chosen for a speed/accuracy trade-off."""

    FAST = "fast"  # TF-IDF + linear SVM: trains in seconds, thousands of items/s
    # linear + frozen-encoder MLP head + rare-n-gram neighbours, pooled: hundreds of items/s
    BALANCED = "balanced"
    BEST = "best"  # adds a logistic TF-IDF member and a larger head

    @classmethod
    def from_str(cls, value: str) -> Preset:
        try:
            return cls(value.lower())
        except ValueError:
            raise ConfigError(
                f"unknown preset '{value}'; choose one of {', '.join(p.value for p in cls)}"
            ) from None


def _cpu_encoder() -> str:
    """MiniLM with int8 weights where ONNX Runtime is installed (about twice the float
    model's speed on a CPU, which is what bounds `balanced`'s throughput), else MiniLM."""
    from .encoders.onnx import onnx_available

    return "minilm-int8" if onnx_available() else "minilm"


# neighbours compared on the n-grams in at most 0.2% of training rows, i.e. on identifiers:
# on pricerunner this member took `balanced` from 102 to 73 errors (docs/benchmarks.md)
RARE_NGRAM_KNN: dict[str, Any] = {"max_df": 0.002}

PRESETS: dict[Preset, tuple[str, dict[str, Any]]] = {
    Preset.FAST: ("linear", {}),
    Preset.BALANCED: (
        "ensemble",
        {
            "members": (
                ("linear", {}),
                ("head", {"encoder": _cpu_encoder()}),
                ("knn", RARE_NGRAM_KNN),
            )
        },
    ),
    Preset.BEST: (
        "ensemble",
        {
            "members": (
                ("linear", {}),
                ("linear", {"classifier": "logreg", "C": 20.0}),
                ("head", {"hidden": 1024}),
                ("knn", RARE_NGRAM_KNN),
            )
        },
    ),
}


# With photos, presets choose how text and image are combined. Late fusion (TF-IDF text model
# + image head) is the default: over three seeds on fashion it beat the title-only model on
# leaf accuracy and macro-F1 every time. `best` adds the gated early-fusion network, which
# adds accuracy, but its macro-F1 swings with the seed (docs/benchmarks.md, "Photos").
FUSION_PRESETS: dict[Preset, dict[str, Any]] = {
    Preset.FAST: {"mode": "late"},
    Preset.BALANCED: {"mode": "late"},  # the image head dominates the cost of either
    Preset.BEST: {"mode": "both", "hidden": 1024, "image_config": {"hidden": 1024}},
}


def resolve_kind(
    preset: str | None,
    kind: str | None,
    overrides: dict[str, Any],
    languages: LanguagePlan | None = None,
) -> tuple[str, Any]:
    """The (kind, config) to train: the preset's, replaced by `kind` when given, adapted to
    the catalogue's `languages` (see `taxonomist.languages`), then updated with `overrides`
    (e.g. {"balance": True}) wherever the config has such a field."""

    def adapt(member_kind: str, member_config: dict[str, Any]) -> dict[str, Any]:
        return languages.adapt(member_kind, member_config) if languages else member_config

    preset_key = Preset.from_str(preset or "balanced")
    chosen_kind, config = PRESETS[preset_key]
    if kind == "fusion":
        chosen_kind, config = kind, FUSION_PRESETS[preset_key]
    elif kind and kind != chosen_kind:
        chosen_kind, config = kind, ({} if kind != "ensemble" else PRESETS[Preset.BALANCED][1])
    cls = model_class(chosen_kind)
    config = dict(config)
    if chosen_kind == "ensemble":
        members = []
        for member_kind, member_config in config.get("members", ()):
            fields = model_class(member_kind).config_class.__dataclass_fields__
            merged = {
                **adapt(member_kind, member_config),
                **{k: v for k, v in overrides.items() if k in fields},
            }
            members.append((member_kind, merged))
        config["members"] = tuple(members)
        own = cls.config_class.__dataclass_fields__  # e.g. cascade
        config.update({k: v for k, v in overrides.items() if k in own and k != "members"})
    else:
        fields = cls.config_class.__dataclass_fields__
        config = adapt(chosen_kind, config)
        config.update({k: v for k, v in overrides.items() if k in fields})
    return chosen_kind, cls.config_class.from_dict(config)


# With at most this many labelled products in the median category, training suggests the
# `fewshot` kind (docs/benchmarks.md, "Few labels")
FEW_LABELS = 20


def few_labels(labels: Sequence[str]) -> bool:
    """Whether the median category has at most `FEW_LABELS` labelled products."""
    from collections import Counter

    counts = sorted(Counter(labels).values())
    return counts[len(counts) // 2] <= FEW_LABELS


def cut_validation(
    texts: list[ModelInput], labels: list[str], fraction: float = 0.1, seed: int = 13
) -> tuple[list[ModelInput], list[str], list[ModelInput], list[str]]:
    """(train texts, train labels, valid texts, valid labels) by `group_split`.

    Raises:
        DataError: either side would have fewer than `MIN_VALID_ROWS` rows.
    """
    train_idx, valid_idx = group_split(texts, fraction, seed)
    if len(valid_idx) < MIN_VALID_ROWS or len(train_idx) < MIN_VALID_ROWS:
        raise DataError(
            f"too few rows for a validation split: {len(texts)} rows gave "
            f"{len(train_idx)} train / {len(valid_idx)} validation (need at least "
            f"{MIN_VALID_ROWS} each); add data or pass --valid FILE"
        )
    return (
        [texts[i] for i in train_idx],
        [labels[i] for i in train_idx],
        [texts[i] for i in valid_idx],
        [labels[i] for i in valid_idx],
    )


def with_device_members(
    preset: str | None, kind: str | None, chosen: str, config: Any, device: str
) -> Any:
    """On a CUDA GPU, `best` offers a fine-tuned transformer as one more candidate member;
    out-of-fold selection keeps it only if it earns its place (on a CPU it would take hours)."""
    if (
        kind is None
        and chosen == "ensemble"
        and Preset.from_str(preset or "balanced") is Preset.BEST
        and str(device).startswith("cuda")
    ):
        return replace(config, members=(*config.members, ("finetune", {})))
    return config


@dataclass
class TrainedModel:
    model: Model
    path: Path
    train_rows: int
    valid_rows: int
    curve_path: Path | None


def train_model(
    texts: list[ModelInput],
    labels: list[str],
    taxonomy,
    out_dir: str | Path,
    *,
    valid_texts: list[ModelInput] | None = None,
    valid_labels: list[str] | None = None,
    preset: str | None = "balanced",
    kind: str | None = None,
    overrides: dict[str, Any] | None = None,
    valid_fraction: float = 0.1,
    seed: int = 13,
    refit: bool | None = None,
    progress=None,
    device: str = "cpu",
    ids: list[str] | None = None,
    precision_target: float | None = None,
    unlabelled: list[ModelInput] | None = None,
) -> TrainedModel:
    """Fit the chosen kind and save it with its manifest and training curve.

    Without a validation set, one is cut from the training rows by group of identical titles.
    `refit` retrains on train + validation once validation has chosen epochs, temperature and
    ensemble weights; by default it does so unless a fine-tuned transformer is involved
    (there it would double a long training run). With photos among the inputs and no
    `kind`, the preset's `fusion` model is trained. `device` (resolved, see
    `taxonomist.devices`) is where a fine-tuned transformer trains. `precision_target` is
    what the routing thresholds are chosen for (`taxonomist.routing`; default 0.99).
    `unlabelled`: products of the same catalogue without labels, for the kinds that learn
    from them (`fewshot` self-trains on them); any other kind refuses them (ConfigError).
    """
    if not texts:
        raise DataError("no training rows")
    if len(set(labels)) < 2:
        raise DataError(
            f"training data has a single class ({labels[0]!r}); a classifier needs at least two"
        )
    from .analysis.neighbours import TrainingIndex
    from .items import as_texts

    # every labelled row (validation included), with `ids` in the same order when given
    index = TrainingIndex.build(
        ids, as_texts([*texts, *(valid_texts or [])]), [*labels, *(valid_labels or [])]
    )
    if kind is None and has_images(texts):
        kind = "fusion"
    if kind is None and few_labels(labels):
        logger.warning(
            "at most %d labelled products in most categories: --kind fewshot usually does "
            "better than a preset there",
            FEW_LABELS,
        )
    if valid_texts is None and kind == "fewshot":
        # it cross-validates on every labelled row; a held-out split would waste labels
        valid_texts, valid_labels = [], []
    elif valid_texts is None:
        texts, labels, valid_texts, valid_labels = cut_validation(
            texts, labels, valid_fraction, seed
        )
    languages = plan_for(texts)
    chosen, config = resolve_kind(preset, kind, dict(overrides or {}), languages)
    config = with_device_members(preset, kind, chosen, config, device)
    model = model_class(chosen)(taxonomy, config)
    model.device = device
    if precision_target is not None:
        model.precision_target = check_precision_target(precision_target)
    logger.info("training %s on %d rows, validating on %d", chosen, len(texts), len(valid_texts))
    model.fit(texts, labels, valid_texts, valid_labels, progress=progress, unlabelled=unlabelled)
    if refit is None:
        kinds = {chosen, *(k for k, _ in getattr(config, "members", ()))}
        # retraining a transformer or backbone blocks would double a long training run
        refit = "finetune" not in kinds and not getattr(config, "finetune_blocks", 0)
    model.training_index = index
    if refit and valid_texts:
        logger.info("refitting on train + validation (%d rows)", len(texts) + len(valid_texts))
        model.refit_full(texts + valid_texts, labels + list(valid_labels or []), progress=progress)
    path = model.save(
        out_dir,
        extra={
            "preset": preset,
            "train_rows": len(texts),
            "valid_rows": len(valid_texts or []),
            "unlabelled_rows": len(unlabelled or []),
            "languages": languages.as_manifest(),
        },
    )
    curve = plot_training_curve(model, Path(path) / "training_curve.png")
    return TrainedModel(model, Path(path), len(texts), len(valid_texts or []), curve)


def plot_training_curve(model: Model, path: Path) -> Path | None:
    """Train/validation loss and validation accuracy per epoch, when the kind has epochs."""

    def epochs_of(history: list[dict[str, float]]) -> list[dict[str, float]]:
        return [r for r in history if "train_loss" in r and "epoch" in r]

    rows = epochs_of(model.report.history if model.report else [])
    if model.kind in ("ensemble", "fusion"):
        for member in getattr(model, "members", []):
            if member.report and epochs_of(member.report.history):
                rows = epochs_of(member.report.history)
    if not rows:
        return None
    from .plotting import Figures as plt

    epochs = [r["epoch"] for r in rows]
    fig, left = plt.subplots(figsize=(6, 3.5))
    left.plot(epochs, [r["train_loss"] for r in rows], label="train loss")
    if "valid_loss" in rows[0]:
        left.plot(epochs, [r["valid_loss"] for r in rows], label="validation loss")
    left.set_xlabel("epoch")
    left.set_ylabel("loss")
    if "valid_accuracy" in rows[0]:
        right = left.twinx()
        right.plot(
            epochs,
            [r["valid_accuracy"] for r in rows],
            color="tab:green",
            label="validation accuracy",
        )
        right.set_ylabel("accuracy")
    # one legend for both axes, below the plot: inside, some corner always hides a curve
    handles = [h for ax in fig.axes for h in ax.get_legend_handles_labels()[0]]
    fig.legend(
        handles,
        [str(h.get_label()) for h in handles],
        loc="lower center",
        ncol=len(handles),
        fontsize=8,
        frameon=False,
    )
    left.set_title("Training curve")
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
