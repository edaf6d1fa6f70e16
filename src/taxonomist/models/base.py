"""The interface every trained model kind implements, and the work they all share.

Template method: public `fit`/`predict` validate input, then call the protected `_fit`,
`_logits`, `_save` and `_load` a kind implements. Shared here: the label space (any taxonomy
nodes, internal ones included), temperature calibration on the validation split,
path-consistent decoding with per-level confidences, and the model directory.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..calibration import fit_temperature, log_softmax, softmax
from ..errors import ConfigError, DataError, NotTrainedError
from ..hierarchy import TreeIndex
from ..items import ModelInput, as_items, as_texts
from ..persistence import load_consistent, read_taxonomy, save_model_dir
from ..predictions import Predictions
from ..routing import DEFAULT_PRECISION_TARGET, Routing, choose_routing
from ..taxonomy import Taxonomy

logger = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass
class FitReport:
    """What training produced: per-epoch history and the validation metrics."""

    history: list[dict[str, float]] = field(default_factory=list)
    valid_metrics: dict[str, float] = field(default_factory=dict)
    temperature: float = 1.0
    seconds: float = 0.0


class Model(ABC):
    """A trained text classifier over the nodes of a taxonomy.

    Args:
        taxonomy: the tree; every prediction is one of its nodes.
        config: the kind's frozen config dataclass.
    """

    kind: ClassVar[str]
    config_class: ClassVar[Any]  # a frozen dataclass with from_dict()
    # Kinds that see images get `Item`s in _fit/_logits; text kinds get plain strings.
    uses_images: ClassVar[bool] = False
    # Kinds that learn from unlabelled products too take them as `_fit(..., unlabelled=)`.
    uses_unlabelled: ClassVar[bool] = False

    def __init__(self, taxonomy: Taxonomy, config: Any = None) -> None:
        self.taxonomy = taxonomy
        self.config = config if config is not None else self.config_class()
        self.labels: list[str] = []  # category ids, in tree order
        self.temperature = 1.0
        self._tree: TreeIndex | None = None
        self.report: FitReport | None = None
        self.refitted = False
        # where the kind's torch encoder (head, image, fusion, the zero-shot encoders) or
        # fine-tuned transformer runs ("auto" allowed; CPU-only encoders ignore it); set
        # before fit, or given to load_model
        self.device = "cpu"
        # the training rows (analysis.neighbours.TrainingIndex), saved beside the weights when
        # set, for explanations and the active learner; in-memory only, never loaded here
        self.training_index: Any = None
        # routing thresholds are chosen on validation for this precision (set before fit)
        self.precision_target = DEFAULT_PRECISION_TARGET
        self.routing: Routing | None = None
        # the embedding cache the kinds that encode use: a folder (None: the default one)
        # and on/off (None: TAXONOMIST_NO_CACHE decides); set before use, or by load_model
        self.cache_dir: str | Path | None = None
        self.use_cache: bool | None = None
        # lazy first-use builds (encoders, the cache) happen once even when many threads
        # predict at the same time
        self._init_lock = threading.RLock()
        self._cache: Any = None
        self._cache_opened = False

    def lazy(self, attr: str, build: Callable[[], Any]) -> Any:
        """`self.<attr>`, built by `build()` on first use, once across threads."""
        value = getattr(self, attr)
        if value is None:
            with self._init_lock:
                value = getattr(self, attr)
                if value is None:
                    value = build()
                    setattr(self, attr, value)
        return value

    def embedding_cache(self) -> Any:
        """The `EmbeddingCache` this model's encoders use, or None (caching off)."""
        if not self._cache_opened:
            with self._init_lock:
                if not self._cache_opened:
                    from ..encoders.cache import open_cache

                    self._cache = open_cache(self.cache_dir, enabled=self.use_cache)
                    self._cache_opened = True
        return self._cache

    def use_settings_of(self, parent: Model) -> None:
        """Run where `parent` runs and share its cache settings (ensemble and fusion members)."""
        self.device = parent.device
        self.cache_dir = parent.cache_dir
        self.use_cache = parent.use_cache

    # -- training -------------------------------------------------------------------------
    def fit(
        self,
        texts: Sequence[ModelInput],
        labels: Sequence[str],
        valid_texts: Sequence[ModelInput] | None = None,
        valid_labels: Sequence[str] | None = None,
        *,
        progress: Progress | None = None,
        unlabelled: Sequence[ModelInput] | None = None,
    ) -> FitReport:
        """Train on products (texts or `Item`s) and their category ids; calibrate on the
        validation split. `unlabelled`: products of the same catalogue without a label, for
        the kinds that can learn from them (`uses_unlabelled`).

        Raises:
            DataError: mismatched lengths, empty input, fewer than two classes, or a label
                that is not a node of the taxonomy.
            ConfigError: unlabelled products given to a kind that cannot use them.
        """
        import time

        started = time.perf_counter()
        check_unlabelled(self.kind, type(self).uses_unlabelled, unlabelled)
        if len(texts) != len(labels):
            raise DataError(f"{len(texts)} texts but {len(labels)} labels")
        if not texts:
            raise DataError("no training rows")
        for label in {*labels, *(valid_labels or ())}:
            if label not in self.taxonomy:
                raise DataError(f"label '{label}' is not a category of '{self.taxonomy.name}'")
        classes = set(labels)
        if len(classes) < 2:
            raise DataError(
                f"training data has a single class ({next(iter(classes))!r}); a classifier "
                "needs at least two"
            )
        self.labels = [c.id for c in self.taxonomy if c.id in classes]
        self._tree = None
        index = {cid: i for i, cid in enumerate(self.labels)}
        y = np.array([index[label] for label in labels])
        vy = None
        if valid_texts is not None and valid_labels is not None and len(valid_texts):
            unseen = sorted({v for v in valid_labels if v not in index})
            if unseen:
                logger.warning(
                    "%d validation labels never occur in training (e.g. %s); those "
                    "rows are left out of validation",
                    len(unseen),
                    unseen[0],
                )
            keep = [i for i, v in enumerate(valid_labels) if v in index]
            valid_texts = self.prepare([valid_texts[i] for i in keep])
            vy = np.array([index[valid_labels[i]] for i in keep])
        else:
            valid_texts = None
        if unlabelled:
            history = self._fit(  # type: ignore[call-arg]
                self.prepare(texts), y, valid_texts, vy, progress,
                unlabelled=self.prepare(unlabelled),
            )  # fmt: skip
        else:
            history = self._fit(self.prepare(texts), y, valid_texts, vy, progress)
        report = FitReport(history=history)
        if valid_texts and vy is not None:
            logits = self._logits(valid_texts)
            self.temperature = fit_temperature(logits, vy)
            report.temperature = self.temperature
            report.valid_metrics = self._metrics(logits, vy)
            self.routing = self._routing(logits, vy)
            report.valid_metrics["automation_rate"] = self.routing.automation_rate or 0.0
        report.seconds = time.perf_counter() - started
        self.report = report
        return report

    def refit_full(
        self,
        texts: Sequence[ModelInput],
        labels: Sequence[str],
        *,
        progress: Progress | None = None,
    ) -> None:
        """Retrain on every row (train + validation) with what validation chose.

        The validation split has done its jobs — early stopping, calibration, ensemble
        weights — and holding 10% of a catalogue back costs accuracy. The temperature and
        the validation metrics stay as measured before the refit.
        """
        self._check_trained()
        index = {cid: i for i, cid in enumerate(self.labels)}
        keep = [i for i, label in enumerate(labels) if label in index]
        self._refit(
            self.prepare([texts[i] for i in keep]),
            np.array([index[labels[i]] for i in keep]),
            progress,
        )
        self.refitted = True

    def _refit(self, texts: list[Any], y: np.ndarray, progress: Progress | None) -> None:
        self._fit(texts, y, None, None, progress)

    def prepare(self, inputs: Sequence[ModelInput]) -> list[Any]:
        """What this kind's `_fit`/`_logits` take: `Item`s if it sees images, else texts."""
        return as_items(inputs) if self.uses_images else as_texts(inputs)

    def _metrics(self, logits: np.ndarray, y: np.ndarray) -> dict[str, float]:
        from ..evaluation import evaluate

        probs = softmax(logits, self.temperature)
        pred = probs.argmax(1)
        paths = [self.taxonomy.get(self.labels[i]).path for i in pred]
        gold = [self.taxonomy.get(self.labels[i]).path for i in y]
        metrics = evaluate(gold, paths, probs.max(1)).metrics
        metrics["log_loss"] = float(
            -log_softmax(logits, self.temperature)[np.arange(len(y)), y].mean()
        )
        return {k: float(v) for k, v in metrics.items()}

    def _routing(self, logits: np.ndarray, y: np.ndarray) -> Routing:
        # thresholds apply to what predict returns: the decoded best path and its confidence
        probs = softmax(logits, self.temperature)
        decoded = self.tree.decode(probs, [str(i) for i in range(len(y))], 1)
        best = [p.candidates[0] for p in decoded]
        return choose_routing(
            [c.category_id for c in best],
            [c.confidence for c in best],
            [self.labels[i] for i in y],
            self.precision_target,
        )

    # -- prediction -----------------------------------------------------------------------
    def _check_trained(self) -> None:
        if not self.labels:
            raise NotTrainedError(f"this {self.kind} model has not been trained or loaded")

    @property
    def tree(self) -> TreeIndex:
        if self._tree is None:
            self._tree = TreeIndex(self.taxonomy, candidate_ids=self.labels)
        return self._tree

    def predict_proba(self, texts: Sequence[ModelInput]) -> np.ndarray:
        """Calibrated probabilities over `self.labels` (columns in that order)."""
        self._check_trained()
        if not len(texts):
            return np.zeros((0, len(self.labels)))
        return softmax(self._logits(self.prepare(texts)), self.temperature)

    def predict(
        self,
        texts: Sequence[ModelInput],
        ids: Sequence[str] | None = None,
        *,
        top_k: int = 1,
        min_confidence: float | None = None,
    ) -> Predictions:
        """Ranked category paths per text with per-level confidences.

        With `min_confidence`, each best path backs off to its deepest level whose
        confidence reaches it, and such rows are flagged `needs_review`.
        """
        ids = list(ids) if ids is not None else [str(i) for i in range(len(texts))]
        probs = self.predict_proba(texts)
        # the tree orders candidates as it orders nodes, which is how labels are kept
        preds = Predictions(self.tree.decode(probs, ids, top_k))
        if min_confidence is not None:
            preds = preds.with_min_confidence(min_confidence, self.taxonomy)
        return preds

    # -- persistence ----------------------------------------------------------------------
    def save(self, path: str | Path, *, extra: dict[str, Any] | None = None) -> Path:
        """Write the model directory (manifest, taxonomy, safetensors), atomically."""
        self._check_trained()
        manifest = {
            "kind": self.kind,
            "config": asdict(self.config),
            "labels": self.labels,
            "label_count": len(self.labels),
            "temperature": self.temperature,
            "routing": self.routing.to_dict() if self.routing else None,
            "refit_on_train_and_valid": self.refitted,
            "taxonomy": {"name": self.taxonomy.name, "version": self.taxonomy.version},
            "training": {
                "history": self.report.history if self.report else [],
                "valid_metrics": self.report.valid_metrics if self.report else {},
                "seconds": self.report.seconds if self.report else None,
            },
            **self._manifest_extra(),
            **(extra or {}),
        }

        def write_files(directory: Path) -> None:
            self._save(directory)
            if self.training_index is not None:
                self.training_index.save(directory)

        if self.training_index is not None:
            manifest["training_index"] = {"rows": len(self.training_index)}
        return save_model_dir(
            path, manifest=manifest, taxonomy=self.taxonomy, write_files=write_files
        )

    @classmethod
    def from_dir(
        cls,
        path: Path,
        manifest: dict[str, Any],
        device: str = "cpu",
        *,
        cache_dir: str | Path | None = None,
        use_cache: bool | None = None,
    ) -> Model:
        config = cls.config_class.from_dict(manifest.get("config", {}))
        model = cls(read_taxonomy(path), config)
        model.device = device
        model.cache_dir = cache_dir
        model.use_cache = use_cache
        model.labels = list(manifest["labels"])
        model.temperature = float(manifest.get("temperature", 1.0))
        if manifest.get("routing"):
            model.routing = Routing.from_dict(manifest["routing"])
            model.precision_target = model.routing.precision_target
        model._load(path, manifest)
        return model

    def _manifest_extra(self) -> dict[str, Any]:
        return {}

    # -- what a kind implements -----------------------------------------------------------
    @abstractmethod
    def _fit(
        self,
        texts: list[str],
        y: np.ndarray,
        valid_texts: list[str] | None,
        valid_y: np.ndarray | None,
        progress: Progress | None,
    ) -> list[dict[str, float]]:
        """Train; return one dict per epoch (train_loss, valid_loss, valid_accuracy...)."""

    @abstractmethod
    def _logits(self, texts: list[str]) -> np.ndarray:
        """Uncalibrated scores (n, len(self.labels)); softmax turns them into probabilities."""

    @abstractmethod
    def _save(self, directory: Path) -> None: ...

    @abstractmethod
    def _load(self, directory: Path, manifest: dict[str, Any]) -> None: ...


def check_unlabelled(kind: str, usable: bool, unlabelled: Sequence[Any] | None) -> None:
    """Refuse unlabelled products for a kind that would silently ignore them."""
    if unlabelled and not usable:
        raise ConfigError(
            f"the {kind} kind cannot learn from unlabelled products; train with --kind "
            "fewshot to use them, or leave out --unlabelled"
        )


def load_model(
    path: str | Path,
    device: str = "cpu",
    *,
    cache_dir: str | Path | None = None,
    use_cache: bool | None = None,
) -> Model:
    """Load any model directory, dispatching on the kind in its manifest.

    `device` ("auto", "cpu", "cuda", "cuda:N"; see `taxonomist.devices`) is where the kinds
    that run a torch encoder or transformer run it (members follow their ensemble or
    fusion); the TF-IDF kinds and the CPU-only encoders (minilm-int8, E5) ignore it.
    `cache_dir` / `use_cache` set the embedding cache of the kinds that encode (None: the
    default folder, and TAXONOMIST_NO_CACHE decides whether to cache).
    """
    from . import model_class

    path = Path(path)

    def build(manifest: dict[str, Any]) -> Model:
        return model_class(manifest.get("kind", "")).from_dir(
            path, manifest, device, cache_dir=cache_dir, use_cache=use_cache
        )

    # the directory may be re-saved while we read it: load_consistent loads again if so
    return load_consistent(path, build)
