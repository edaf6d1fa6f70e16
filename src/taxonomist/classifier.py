"""The one object every adapter holds: a loaded, warmed, thread-safe `Classifier`.

The CLI's `classify`, the REST API, batch jobs and the review loop all classify through a
`Classifier` from `load_classifier`. It hides whether a trained model or zero-shot matching
does the work, checks each in-memory record with the same `validate_record` that checks file
rows, and stamps every `Predictions` with the identity of the model that made it.

Example:
    >>> from taxonomist import load_classifier
    >>> clf = load_classifier("models/fast")                       # doctest: +SKIP
    >>> preds = clf.predict([{"id": "1", "title": "iphone 15 256gb"}], top_k=3)  # doctest: +SKIP
    >>> preds[0].best.path_str, preds.model.version                 # doctest: +SKIP
    ('Mobile Phones', '20261129T051500Z-3f2a9c1d')
"""

from __future__ import annotations

import hashlib
import logging
import threading
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from .data.readers import ColumnSpec, Product
from .data.records import validate_record
from .errors import ConfigError, DataError
from .items import Item, ModelInput
from .predictions import Predictions, missing_language
from .taxonomy import Taxonomy

if TYPE_CHECKING:
    from .analysis.explain import Explanation

logger = logging.getLogger(__name__)

LANGUAGES = ("en", "zh")
Record = Mapping[str, Any] | Product | str


@dataclass(frozen=True)
class ModelIdentity:
    """Which model answered: enough to reproduce or audit a prediction.

    `version` and `digest` come from the model directory's manifest (a trained model) or
    describe the zero-shot set-up (taxonomy, encoder, adaptation).
    """

    name: str
    version: str | None
    digest: str | None
    kind: str
    taxonomy: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Backend(Protocol):
    taxonomy: Taxonomy
    uses_images: bool

    def predict(
        self, inputs: list[ModelInput], ids: list[str], top_k: int, proba: bool
    ) -> Predictions: ...


class _TrainedBackend:
    def __init__(self, model: Any) -> None:
        self.model = model
        self.taxonomy: Taxonomy = model.taxonomy
        self.uses_images = bool(model.uses_images)

    def predict(
        self, inputs: list[ModelInput], ids: list[str], top_k: int, proba: bool
    ) -> Predictions:
        probs = self.model.predict_proba(inputs)
        preds = Predictions(self.model.tree.decode(probs, ids, top_k))
        if proba:
            preds.proba, preds.labels = probs, list(self.model.labels)
        return preds


class _ZeroShotBackend:
    def __init__(self, zero_shot: Any, image_scorer: Any = None) -> None:
        self.zero_shot = zero_shot
        self.taxonomy: Taxonomy = zero_shot.taxonomy
        self.image_scorer = image_scorer
        self.uses_images = image_scorer is not None
        self._category_texts = zero_shot.candidate_texts() if image_scorer is not None else None

    def predict(
        self, inputs: list[ModelInput], ids: list[str], top_k: int, proba: bool
    ) -> Predictions:
        texts = [x.text if isinstance(x, Item) else x for x in inputs]
        image_logp = None
        if self.image_scorer is not None:
            images = [x.image if isinstance(x, Item) else None for x in inputs]
            image_logp = self.image_scorer.log_probs(images, self._category_texts)
        preds = self.zero_shot.predict(
            texts,
            ids,
            top_k=top_k,
            image_log_probs=image_logp,
            image_weight=self.image_scorer.image_weight if self.image_scorer else 0.5,
        )
        if proba:
            tree = self.zero_shot.tree
            preds.proba = np.exp(self.zero_shot.candidate_log_probs(texts))
            preds.labels = [tree.ids[i] for i in tree.candidates]
        return preds

    def adapted(self, texts: Sequence[str]) -> _ZeroShotBackend:
        return _ZeroShotBackend(self.zero_shot.adapt(texts), self.image_scorer)


class Classifier:
    """Classifies in-memory products with one model; safe to share between threads.

    Build it with `load_classifier`. `predict` takes dicts (keys as in `columns`: "id",
    "title", "description", "image"), `Product`s or plain strings, and returns
    `Predictions` whose `.model` is this classifier's `identity`.
    """

    def __init__(
        self,
        backend: _Backend,
        identity: ModelIdentity,
        *,
        columns: ColumnSpec = ColumnSpec(),
        source: Path | None = None,
    ) -> None:
        self._backend = backend
        self.identity = identity
        self.columns = columns
        self.source = source  # the model directory, when there is one
        self._images: Any = None
        self._explainer_obj: Any = None
        self._explainer_lock = threading.Lock()

    @property
    def taxonomy(self) -> Taxonomy:
        return self._backend.taxonomy

    @property
    def uses_images(self) -> bool:
        return self._backend.uses_images

    @property
    def model(self) -> Any:
        """The trained `Model` behind this classifier (None for zero-shot)."""
        return getattr(self._backend, "model", None)

    # -- records --------------------------------------------------------------------------
    def products(self, records: Sequence[Record], *, source: str = "record") -> list[Product]:
        """Check records as the file reader checks rows; the first bad one raises a
        `DataError` naming its position ("record: line 3: field 'title': empty text")."""
        columns = replace(self.columns, image_column="image") if self.uses_images else self.columns
        out = []
        for n, record in enumerate(records, start=1):
            if isinstance(record, Product):
                out.append(record)
                continue
            if isinstance(record, str):
                record = {columns.text_columns[0]: record}
            if not isinstance(record, Mapping):
                raise DataError(
                    f"expected an object with text fields, got {type(record).__name__}",
                    file=source,
                    row=n,
                )
            product = validate_record(record, columns, source=source, line=n, default_id=str(n - 1))
            image = record.get("image") if self.uses_images else None
            if image:
                product = replace(product, image=self._local_image(str(image), source, n))
            elif not product.text:
                raise DataError("empty text and no image", file=source, row=n, field="title")
            out.append(product)
        return out

    def _local_image(self, ref: str, source: str, n: int) -> str:
        # A Python caller may name a local photo; remote references are the API's business
        # (it decodes uploads itself and never passes a caller's path here).
        from .data.readers import _ImageChecker

        if self._images is None:
            self._images = _ImageChecker("image", Path.cwd(), False, None)
        path, problem = self._images(ref)
        if path is None:
            raise DataError(problem or "unusable image", file=source, row=n, field="image")
        return path

    # -- prediction -----------------------------------------------------------------------
    def predict(
        self,
        records: Sequence[Record],
        *,
        top_k: int = 1,
        min_confidence: float | None = None,
        language: str = "en",
        return_proba: bool = False,
    ) -> Predictions:
        """Classify records.

        Args:
            records: dicts, `Product`s or strings (a string is a title).
            top_k: candidate paths per product.
            min_confidence: back each path off to its deepest level reaching it; such rows
                are flagged `needs_review`.
            language: "en" or "zh": the language of the category paths returned, level by
                level where the taxonomy has names in it. A taxonomy with no names at all
                in it answers in its primary names, with a note in `.warnings` (and a
                `UserWarning`).
            return_proba: also return the full class probabilities (`.proba`, `.labels`).

        Raises:
            DataError: a bad record or option (the message names the record and field).
        """
        return self.predict_products(
            self.products(records),
            top_k=top_k,
            min_confidence=min_confidence,
            language=language,
            return_proba=return_proba,
        )

    def predict_products(
        self,
        products: Sequence[Product],
        *,
        top_k: int = 1,
        min_confidence: float | None = None,
        language: str = "en",
        return_proba: bool = False,
    ) -> Predictions:
        """`predict` for products that were already checked (a file reader's batches)."""
        check_options(top_k, min_confidence, language)
        inputs: list[ModelInput] = [
            Item(p.text, p.image) if self.uses_images else p.text for p in products
        ]
        ids = [p.id for p in products]
        if not products:
            return Predictions([], model=self.identity)
        preds = self._backend.predict(inputs, ids, top_k, return_proba)
        preds.model = self.identity
        if min_confidence is not None:
            preds = preds.with_min_confidence(min_confidence, self.taxonomy)
        missing = missing_language(self.taxonomy, language)
        if missing is not None:
            # the REST API answers the same way: an answer in the primary names, saying so,
            # serves a caller better than no answer (file jobs refuse before any work)
            note = f"{missing}: the paths are in its primary names"
            warnings.warn(note, UserWarning, stacklevel=3)
            preds.warnings.append(note)
            return preds
        return preds.localized(self.taxonomy, language)

    # -- explanations ---------------------------------------------------------------------
    def explain(
        self,
        records: Sequence[Record],
        *,
        neighbours: int = 3,
        photos: bool = True,
        max_words: int | None = None,
    ) -> list[Explanation]:
        """Why the model predicts what it does for each record: the words that drove it,
        the nearest training products (when the model was saved with its index) and, for
        photo kinds, an occlusion heat map (`analysis.explain`, as `classify --explain`).

        Args:
            neighbours: nearest training products per record (0: none).
            photos: compute heat maps for records with a photo (16 model calls each).
            max_words: occlusion only: weigh at most this many leading words.

        Raises:
            ConfigError: a zero-shot classifier (explanations need a trained model).
            DataError: a bad record.
        """
        return self.explain_products(
            self.products(records), neighbours=neighbours, photos=photos, max_words=max_words
        )

    def explain_products(
        self,
        products: Sequence[Product],
        *,
        neighbours: int = 3,
        photos: bool = True,
        max_words: int | None = None,
    ) -> list[Explanation]:
        """`explain` for products that were already checked."""
        explainer = self._explainer()
        inputs: list[ModelInput] = [
            Item(p.text, p.image) if self.uses_images else p.text for p in products
        ]
        return explainer.explain(
            inputs,
            [p.id for p in products],
            neighbours=neighbours,
            photos=photos,
            max_words=max_words,
        )

    def _explainer(self) -> Any:
        # built once (it reads the saved training index); the lock keeps two first callers
        # from both reading it
        if self._explainer_obj is None:
            if self.model is None:
                raise ConfigError(
                    f"'{self.identity.name}' is a zero-shot classifier: explanations need a "
                    "trained model"
                )
            from .analysis.explain import Explainer

            with self._explainer_lock:
                if self._explainer_obj is None:
                    self._explainer_obj = Explainer(self.model, self.source)
        return self._explainer_obj

    def adapt(self, texts: Sequence[str]) -> Classifier:
        """Zero-shot only: a new classifier whose category prototypes are fitted to these
        unlabelled texts; this one is left unchanged."""
        if not isinstance(self._backend, _ZeroShotBackend):
            raise ConfigError("only a zero-shot classifier adapts to unlabelled texts")
        backend = self._backend.adapted(texts)
        digest = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:12]
        version = f"{self.identity.version}+adapted-{digest}"
        return Classifier(backend, replace(self.identity, version=version), columns=self.columns)

    def zero_shot_state(self) -> dict[str, Any]:
        """Zero-shot only: the category prototypes and what `adapt` learned, as arrays, with
        the version they make; a worker elsewhere predicts exactly as this classifier does
        from them (`with_zero_shot_state`), without embedding categories or adapting again."""
        if not isinstance(self._backend, _ZeroShotBackend):
            raise ConfigError("only a zero-shot classifier has prototypes to ship")
        return {"arrays": self._backend.zero_shot.state(), "version": self.identity.version}

    def with_zero_shot_state(self, state: Mapping[str, Any]) -> Classifier:
        """A new classifier predicting with another's `zero_shot_state()`."""
        if not isinstance(self._backend, _ZeroShotBackend):
            raise ConfigError("only a zero-shot classifier takes prototypes")
        backend = _ZeroShotBackend(
            self._backend.zero_shot.with_state(state["arrays"]), self._backend.image_scorer
        )
        identity = replace(self.identity, version=state["version"])
        return Classifier(backend, identity, columns=self.columns)

    def warm(self) -> Classifier:
        """Load everything a first prediction would (encoders, category prototypes)."""
        self.predict_products([Product("warm-up", "warm up", 0)])
        return self


def check_options(top_k: int, min_confidence: float | None, language: str) -> None:
    if top_k < 1:
        raise DataError(f"top-k must be at least 1, got {top_k}")
    if min_confidence is not None and not 0 <= min_confidence <= 1:
        raise DataError(f"min-confidence must be in [0, 1], got {min_confidence}")
    if language not in LANGUAGES:
        raise DataError(f"language must be one of {', '.join(LANGUAGES)}, got {language!r}")


def set_cascade(model: Any, cascade: bool | None) -> None:
    """Turn an ensemble's cascade on or off; None leaves it as trained.

    Raises:
        ConfigError: the cascade asked of a model that has none.
    """
    if cascade is None:
        return
    if getattr(model, "cascade_threshold", None) is None:
        if cascade:
            raise ConfigError(
                f"--cascade needs an ensemble with a TF-IDF member and an encoder member, "
                f"trained by this version (this is a '{model.kind}' model without a cascade "
                "threshold); retrain it, or drop --cascade"
            )
        return
    model.cascade = cascade


def load_classifier(
    model: str | Path | None = None,
    *,
    store: str | Path | None = None,
    name: str | None = None,
    taxonomy: str | Taxonomy | None = None,
    encoder: str = "auto",
    device: str = "auto",
    cache_dir: str | Path | None = None,
    use_cache: bool | None = None,
    columns: ColumnSpec = ColumnSpec(),
    images: bool = False,
    alignment: str | Path | None = None,
    zero_shot: Mapping[str, Any] | None = None,
    cascade: bool | None = None,
    warm: bool = False,
) -> Classifier:
    """Load the classifier that the CLI, the API and batch jobs use.

    One of: a trained `model` directory; `store` + `name` (that name's current version in a
    `ModelStore`); or neither, for zero-shot into `taxonomy` (default: the bundled Shopify
    taxonomy) with `encoder`. A trained model classifies into its own taxonomy: giving a
    different one is an error.

    Args:
        device: where a trained model's networks run ("auto", "cpu", "cuda", "cuda:N").
        cache_dir, use_cache: the embedding cache (None: default folder; TAXONOMIST_NO_CACHE
            decides whether to cache).
        columns: which record keys hold id and text.
        images: zero-shot only: also score photos (ImageNet bridge, or `alignment`).
        zero_shot: zero-shot settings (`ZeroShotConfig` fields).
        cascade: a trained ensemble's cascade on or off (`set_cascade`; None: as trained).
            Zero-shot has no cascade and ignores it.
        warm: run one prediction now so the first caller does not wait.

    Raises:
        ModelError: a missing or unreadable model directory or store entry.
        ConfigError: a trained model with a different `taxonomy` given, or bad options.
    """
    from .devices import check_device

    device = check_device(device)
    if store is not None or name is not None:
        if model is not None:
            raise ConfigError("give a model directory or a store and name, not both")
        if store is None or name is None:
            raise ConfigError("a model store needs both --store and --name")
        from .store import ModelStore

        model, store_name = ModelStore(store).current(name), name
    else:
        store_name = None
    if model is not None:
        clf = _trained(Path(model), store_name, taxonomy, device, cache_dir, use_cache, columns)
        set_cascade(clf.model, cascade)
    else:
        clf = _zero_shot(
            taxonomy, encoder, cache_dir, use_cache, columns, images, alignment, zero_shot,
            device,
        )  # fmt: skip
    return clf.warm() if warm else clf


def _trained(
    path: Path,
    store_name: str | None,
    taxonomy: str | Taxonomy | None,
    device: str,
    cache_dir: str | Path | None,
    use_cache: bool | None,
    columns: ColumnSpec,
) -> Classifier:
    from .models import load_model
    from .persistence import model_identity

    trained = load_model(path, device, cache_dir=cache_dir, use_cache=use_cache)
    check_model_taxonomy(trained.taxonomy, taxonomy, path)
    version, digest = model_identity(path)
    identity = ModelIdentity(
        name=store_name or path.name,
        version=version,
        digest=digest,
        kind=trained.kind,
        taxonomy=_taxonomy_label(trained.taxonomy),
    )
    return Classifier(_TrainedBackend(trained), identity, columns=columns, source=path)


def check_model_taxonomy(own: Taxonomy, given: str | Taxonomy | None, path: Path) -> None:
    """A trained model carries its taxonomy: another one asked for is a mistake to report,
    not an option to ignore. Compared by content (ids and paths), so the model's own
    taxonomy given as a file, or under another name, is accepted."""
    from .taxonomy_loaders import check_model_taxonomy as check

    check(own, given, model=str(path))


def _taxonomy_label(tax: Taxonomy) -> str:
    return f"{tax.name} {tax.version or ''}".strip()


def _zero_shot(
    taxonomy: str | Taxonomy | None,
    encoder: str,
    cache_dir: str | Path | None,
    use_cache: bool | None,
    columns: ColumnSpec,
    images: bool,
    alignment: str | Path | None,
    settings: Mapping[str, Any] | None,
    device: str = "cpu",
) -> Classifier:
    from .encoders import build_encoder_set, open_cache
    from .taxonomy_loaders import load_taxonomy
    from .zeroshot import ZeroShotClassifier, ZeroShotConfig

    tax = (
        taxonomy
        if isinstance(taxonomy, Taxonomy)
        else load_taxonomy(taxonomy or "shopify", separator=columns.label_separator)
    )
    if alignment is not None and not images:
        raise ConfigError("an alignment scores photos: it needs images=True (--image-column)")
    cache = open_cache(cache_dir, enabled=use_cache)
    config = ZeroShotConfig(**dict(settings or {}))
    zs = ZeroShotClassifier(tax, build_encoder_set(encoder, cache=cache, device=device), config)
    scorer = _image_scorer(alignment, encoder, cache, device) if images else None
    described = f"{encoder}" + (f"+images:{scorer.describe}" if scorer is not None else "")
    config_digest = hashlib.sha256(repr(config).encode()).hexdigest()[:12]
    identity = ModelIdentity(
        name="zero-shot",
        version=f"{tax.name}-{tax.version or 'custom'}/{described}",
        digest=config_digest,
        kind="zero-shot",
        taxonomy=_taxonomy_label(tax),
    )
    if images:
        columns = replace(columns, image_column=columns.image_column or "image")
    return Classifier(_ZeroShotBackend(zs, scorer), identity, columns=columns)


def _image_scorer(
    alignment: str | Path | None, encoder: str, cache: Any, device: str = "cpu"
) -> Any:
    """The zero-shot image scorer: a trained alignment when given, else the ImageNet bridge
    (over `encoder`'s English model; `fake` gives fake encoders on both sides, for tests).
    Its torch encoders run on `device`."""
    from .devices import resolve_device
    from .encoders import CachedEncoder, build_encoder, encoder_device
    from .encoders.image import build_image_encoder
    from .zeroshot_images import ImageNetBridge, ImageTextAlignment

    if alignment is not None:
        return ImageTextAlignment.load(alignment, cache=cache, device=device)
    spec = "minilm" if encoder in ("auto", "e5", "use") else encoder
    text = build_encoder(spec, device=encoder_device(spec, device))
    image = build_image_encoder(
        "fake" if encoder == "fake" else "efficientnet-lite0",
        cache=cache,
        device="cpu" if encoder == "fake" else resolve_device(device),
    )
    return ImageNetBridge(CachedEncoder(text, cache) if cache else text, image)
