"""Command line: parse options, call the service layer, print results, map errors to exit codes.

Heavy libraries (torch, sentence-transformers, scikit-learn) are imported inside commands so
`taxonomist --help` starts in well under a second.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from .data.readers import BadRow, ColumnSpec
from .errors import TaxonomistError

app = typer.Typer(
    help="Sort products into a category taxonomy with pretrained models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
taxonomy_app = typer.Typer(
    help="Inspect taxonomies: bundled (shopify, google) or files.", no_args_is_help=True
)
app.add_typer(taxonomy_app, name="taxonomy")
models_app = typer.Typer(
    help="A versioned model store: list, show, promote, roll back.", no_args_is_help=True
)
app.add_typer(models_app, name="models")

MAX_BAD_ROWS_SHOWN = 20

TaxonomyOpt = Annotated[
    str | None,
    typer.Option("--taxonomy", "-t", help="Bundled name (shopify, google) or a taxonomy FILE."),
]
IdColumn = Annotated[str, typer.Option(help="Column with product ids.")]
TextColumns = Annotated[
    str, typer.Option(help="Comma-separated text columns; those present are used.")
]
ImageColumn = Annotated[
    str | None,
    typer.Option(
        help="Column with product photos: local paths (relative to the data file's folder), "
        "JPEG/PNG/WebP. None by default."
    ),
]
AllowDownload = Annotated[
    bool,
    typer.Option("--allow-download", help="Fetch http(s) image URLs (off: they are reported)."),
]
LabelColumn = Annotated[str, typer.Option(help="Column with category labels.")]
LabelSeparator = Annotated[str, typer.Option(help="Separator between levels in a label path.")]
Strict = Annotated[bool, typer.Option("--strict", help="Fail on the first bad row.")]
Device = Annotated[
    str,
    typer.Option(
        help="Where the torch encoders and networks run (zero-shot, head, image, fusion, "
        "finetune): auto (a CUDA GPU when torch sees one, else the CPU), cpu, cuda, cuda:N "
        "or mps. minilm-int8 and E5 always run on the CPU."
    ),
]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Log progress details.")]
Cascade = Annotated[
    bool | None,
    typer.Option(
        "--cascade/--no-cascade",
        help="Ensembles: the TF-IDF members answer first; only products below the confidence "
        "threshold learned on validation go through the encoder (default: as trained).",
    ),
]
StoreOpt = Annotated[
    Path | None, typer.Option("--store", help="A model store folder (with --name).")
]
NameOpt = Annotated[str | None, typer.Option("--name", help="A model's name in --store.")]


def _columns(
    id_column: str,
    text_columns: str,
    image_column: str | None,
    label_column: str,
    label_separator: str,
) -> ColumnSpec:
    texts = tuple(c.strip() for c in text_columns.split(",") if c.strip())
    return ColumnSpec(id_column, texts, image_column, label_column, label_separator)


class _BadRowPrinter:
    """Prints the first bad rows (skipped) and image problems (product kept, text only)."""

    def __init__(self) -> None:
        self.count = 0
        self.image_count = 0

    def __call__(self, row: BadRow) -> None:
        self.count += 1
        if self.count <= MAX_BAD_ROWS_SHOWN:
            typer.echo(f"skipped: {row}", err=True)

    def image_problem(self, row: BadRow) -> None:
        self.image_count += 1
        if self.image_count <= MAX_BAD_ROWS_SHOWN:
            typer.echo(f"image ignored, text used: {row}", err=True)

    def reading(self, allow_download: bool):
        from .service import ImageReading

        return ImageReading(allow_download, self.image_problem)

    def finish(self) -> None:
        if self.count > MAX_BAD_ROWS_SHOWN:
            typer.echo(f"... and {self.count - MAX_BAD_ROWS_SHOWN} more bad rows", err=True)
        if self.image_count > MAX_BAD_ROWS_SHOWN:
            typer.echo(
                f"... and {self.image_count - MAX_BAD_ROWS_SHOWN} more image problems", err=True
            )


@contextmanager
def _reported(printer: _BadRowPrinter | None = None) -> Iterator[None]:
    """Run a service call: bad rows summarised, a domain error as one line and exit 1."""
    try:
        yield
    except TaxonomistError as exc:
        if printer:
            printer.finish()
        _fail(exc)
    if printer:
        printer.finish()


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    # library chatter (weight-loading bars, deprecation notices) is not for our users
    for name in ("sentence_transformers", "transformers", "httpx"):
        logging.getLogger(name).setLevel(logging.ERROR)
    if not verbose:
        # transformers configures its own handler at import; this is the switch it reads
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def _fail(exc: Exception) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(code=1)


@app.command()
def classify(
    input: Annotated[Path, typer.Argument(help="Products: .csv, .tsv, .jsonl or .parquet.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output .csv, .jsonl or .parquet.")],
    taxonomy: Annotated[
        str | None,
        typer.Option(
            "--taxonomy",
            "-t",
            help="Zero-shot: bundled name (shopify, google) or a taxonomy FILE "
            "[default: shopify]. A trained model uses its own.",
        ),
    ] = None,
    model: Annotated[
        Path | None,
        typer.Option("--model", "-m", help="A trained model directory (else zero-shot)."),
    ] = None,
    store: StoreOpt = None,
    name: NameOpt = None,
    language: Annotated[
        str,
        typer.Option(help="Language of the category paths written: en, or zh (Chinese names)."),
    ] = "en",
    encoder: Annotated[
        str,
        typer.Option(
            help="Zero-shot encoder: auto (MiniLM for English, multilingual E5 for Chinese), "
            "minilm, e5, fake, or a sentence-transformers directory."
        ),
    ] = "auto",
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1, max=50)] = 1,
    min_confidence: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Back off to the deepest level at least this confident; flag such rows "
            "needs_review.",
        ),
    ] = None,
    adapt: Annotated[
        bool,
        typer.Option(help="Adapt category prototypes to this file's products (no labels used)."),
    ] = True,
    batch_size: Annotated[int, typer.Option(min=1, max=65536)] = 512,
    id_column: IdColumn = "id",
    text_columns: TextColumns = "title,description",
    image_column: ImageColumn = None,
    alignment: Annotated[
        Path | None,
        typer.Option(
            help="Zero-shot with photos: an image-text alignment from `taxonomist align` "
            "(default: the ImageNet bridge)."
        ),
    ] = None,
    allow_download: AllowDownload = False,
    label_column: LabelColumn = "category",
    label_separator: LabelSeparator = " > ",
    device: Device = "auto",
    cascade: Cascade = None,
    format: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="Batch job: --out is a folder of part files in this format (parquet, "
            "jsonl, csv) with a manifest; resumable with --resume.",
        ),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Batch job: continue the job in --out.")
    ] = False,
    engine: Annotated[
        str, typer.Option(help="Batch job engine: local (resumable) or ray.")
    ] = "local",
    ray_address: Annotated[
        str | None,
        typer.Option(help="Ray engine: auto or ray://HOST:PORT (default: a local Ray)."),
    ] = None,
    concurrency: Annotated[
        int, typer.Option(min=1, help="Ray engine: classifier actors (workers).")
    ] = 2,
    gpus_per_worker: Annotated[
        float, typer.Option(min=0.0, help="Ray engine: GPUs each actor asks for.")
    ] = 0.0,
    part_rows: Annotated[
        int, typer.Option(min=1, help="Local batch job: good rows per part file.")
    ] = 10_000,
    cache: Annotated[
        bool,
        typer.Option(
            "--cache/--no-cache",
            help="Batch jobs: use the embedding cache (default off: each title is seen once).",
        ),
    ] = False,
    strict: Strict = False,
    verbose: Verbose = False,
) -> None:
    """Classify products: zero-shot into a taxonomy, or with a trained --model."""
    _setup_logging(verbose)
    if format is not None or resume or engine != "local":
        _classify_batch(
            input, out, model=model, store=store, name=name, language=language,
            taxonomy=taxonomy, encoder=encoder, top_k=top_k,
            min_confidence=min_confidence, adapt=adapt, batch_size=batch_size,
            columns=_columns(id_column, text_columns, image_column, label_column,
                             label_separator),
            device=device, cascade=cascade, fmt=format or "parquet", resume=resume,
            engine=engine, ray_address=ray_address, concurrency=concurrency,
            gpus_per_worker=gpus_per_worker, part_rows=part_rows, cache=cache, strict=strict,
        )  # fmt: skip
        return
    from tqdm import tqdm

    from . import service

    printer = _BadRowPrinter()
    with _reported(printer):
        columns = _columns(id_column, text_columns, image_column, label_column, label_separator)
        with tqdm(unit=" products", desc="classifying", disable=not sys.stderr.isatty()) as bar:
            outcome = service.classify_file(
                input,
                out,
                taxonomy=taxonomy,
                model=model,
                store=store,
                name=name,
                language=language,
                min_confidence=min_confidence,
                encoder=encoder,
                columns=columns,
                top_k=top_k,
                strict=strict,
                adapt=adapt,
                batch_size=batch_size,
                alignment=alignment,
                allow_download=allow_download,
                progress=bar.update,
                on_bad_row=printer,
                on_image_problem=printer.image_problem,
                device=device,
                cascade=cascade,
            )
    rate = outcome.written / max(outcome.seconds, 1e-9)
    typer.echo(
        f"classified {outcome.written} products into {outcome.taxonomy} -> {outcome.output} "
        f"({outcome.seconds:.1f} s, {rate:.0f}/s); {len(outcome.report.bad_rows)} bad rows skipped"
        + (f", {len(outcome.report.image_problems)} without a usable image" if image_column else "")
    )


@app.command()
def train(
    input: Annotated[Path, typer.Argument(help="Labelled products: .csv, .tsv, .jsonl, .parquet.")],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Model directory to write (or --store and --name)."),
    ] = None,
    store: StoreOpt = None,
    name: NameOpt = None,
    promote: Annotated[
        bool,
        typer.Option(
            "--promote",
            help="With --store: make the new version current at once (the first version of "
            "a name always is).",
        ),
    ] = False,
    valid: Annotated[
        Path | None,
        typer.Option(
            help="Validation file (default: 10% of INPUT, split by group of identical titles)."
        ),
    ] = None,
    preset: Annotated[str, typer.Option(help="fast | balanced | best.")] = "balanced",
    kind: Annotated[
        str | None,
        typer.Option(
            help="Override the preset's kind: linear | knn | head | finetune | ensemble | "
            "image | fusion (with --image-column, fusion is the default)."
        ),
    ] = None,
    taxonomy: Annotated[
        str | None,
        typer.Option(
            "--taxonomy",
            "-t",
            help="Labels must be categories of this taxonomy (default: the "
            "label paths found in the files).",
        ),
    ] = None,
    balance: Annotated[
        bool,
        typer.Option("--balance", help="Class-weighted loss for imbalanced/long-tailed labels."),
    ] = False,
    encoder: Annotated[
        str | None,
        typer.Option(help="Encoder for head members (minilm, minilm-int8, e5, or a directory)."),
    ] = None,
    peft: Annotated[
        str | None, typer.Option(help="finetune: parameter-efficient method (lora).")
    ] = None,
    adversarial: Annotated[
        str | None, typer.Option(help="finetune: adversarial training on embeddings (fgm, pgd).")
    ] = None,
    epochs: Annotated[
        int | None, typer.Option(min=1, max=1000, help="Epochs for head/finetune kinds.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for the split and initialisation.")] = 13,
    refit: Annotated[
        bool | None,
        typer.Option(
            "--refit/--no-refit",
            help="Retrain on train + validation after validation has chosen epochs, "
            "calibration and weights (default: yes, except for finetune).",
        ),
    ] = None,
    id_column: IdColumn = "id",
    text_columns: TextColumns = "title,description",
    image_column: ImageColumn = None,
    allow_download: AllowDownload = False,
    label_column: LabelColumn = "category",
    label_separator: LabelSeparator = " > ",
    device: Device = "auto",
    cascade: Annotated[
        bool,
        typer.Option(
            "--cascade",
            help="Ensembles: classify with the cascade by default (TF-IDF members first; the "
            "encoder only below a threshold learned on validation).",
        ),
    ] = False,
    strict: Strict = False,
    verbose: Verbose = False,
) -> None:
    """Train a model on a labelled catalogue and save it as a model directory."""
    _setup_logging(verbose)
    from . import service

    printer = _BadRowPrinter()
    overrides: dict[str, object] = {"seed": seed}
    if balance:
        overrides["balance"] = True
    if cascade:
        overrides["cascade"] = True
    for option, value in (
        ("encoder", encoder),
        ("peft", peft),
        ("adversarial", adversarial),
        ("epochs", epochs),
    ):
        if value is not None:
            overrides[option] = value

    from tqdm import tqdm

    bars: dict[str, tqdm] = {}

    def progress(stage: str, done: int, total: int) -> None:
        # "step" comes from kinds that train in mini-batches for minutes (finetune)
        if stage == "step":
            bar = bars.get("step") or bars.setdefault(
                "step",
                tqdm(total=total, unit=" steps", desc="training", disable=not sys.stderr.isatty()),
            )
            bar.update(done - bar.n)
        elif stage == "epoch":
            typer.echo(f"  epoch {done}/{total}", err=True)

    with _reported(printer):
        columns = _columns(id_column, text_columns, image_column, label_column, label_separator)
        outcome = service.train_file(
            input,
            out,
            valid_path=valid,
            preset=preset,
            kind=kind,
            taxonomy=taxonomy,
            columns=columns,
            overrides=overrides,
            strict=strict,
            seed=seed,
            refit=refit,
            progress=progress,
            on_bad_row=printer,
            reading=printer.reading(allow_download),
            device=device,
            store=store,
            name=name,
            promote=promote or None,
        )
    for bar in bars.values():
        bar.close()
    m = outcome.valid_metrics
    typer.echo(
        f"trained {outcome.kind} on {outcome.train_rows} rows in {outcome.seconds:.0f} s; "
        f"validation ({outcome.valid_rows} rows): accuracy {m.get('accuracy', float('nan')):.4f}, "
        f"macro-F1 {m.get('f1_macro', float('nan')):.4f}, ECE {m.get('ece', float('nan')):.4f}"
    )
    typer.echo(f"model: {outcome.model_dir}")
    if outcome.curve_path:
        typer.echo(f"training curve: {outcome.curve_path}")


@app.command()
def tune(
    input: Annotated[Path, typer.Argument(help="Labelled products file.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Model directory for the best model.")],
    time_budget: Annotated[float, typer.Option(min=0.1, help="Minutes to spend searching.")] = 10.0,
    valid: Annotated[Path | None, typer.Option(help="Validation file.")] = None,
    preset: Annotated[str, typer.Option(help="fast | balanced | best.")] = "balanced",
    kind: Annotated[str | None, typer.Option(help="Override the preset's kind.")] = None,
    taxonomy: TaxonomyOpt = None,
    seed: Annotated[int, typer.Option(help="Seed for the split and the search.")] = 13,
    id_column: IdColumn = "id",
    text_columns: TextColumns = "title,description",
    image_column: ImageColumn = None,
    allow_download: AllowDownload = False,
    label_column: LabelColumn = "category",
    label_separator: LabelSeparator = " > ",
    device: Device = "auto",
    strict: Strict = False,
    verbose: Verbose = False,
) -> None:
    """Random-search a preset's hyper-parameters on the validation split; keep the best."""
    _setup_logging(verbose)
    from . import service

    printer = _BadRowPrinter()

    def on_trial(row: dict) -> None:
        typer.echo(
            f"trial {row['trial']}: validation accuracy {row['valid_accuracy']:.4f}, "
            f"log-loss {row['valid_log_loss']:.4f} ({row['seconds']} s)",
            err=True,
        )

    with _reported(printer):
        columns = _columns(id_column, text_columns, image_column, label_column, label_separator)
        outcome = service.tune_file(
            input,
            out,
            time_budget_minutes=time_budget,
            valid_path=valid,
            preset=preset,
            kind=kind,
            taxonomy=taxonomy,
            columns=columns,
            strict=strict,
            seed=seed,
            on_trial=on_trial,
            on_bad_row=printer,
            reading=printer.reading(allow_download),
            device=device,
        )
    m = outcome.valid_metrics
    typer.echo(
        f"best of {len(outcome.trials)} trials: {outcome.kind}, validation accuracy "
        f"{m.get('accuracy', float('nan')):.4f} ({outcome.seconds:.0f} s)"
    )
    typer.echo(f"model: {outcome.model_dir}")


@app.command()
def align(
    input: Annotated[Path, typer.Argument(help="Products with photos and titles (no labels).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Alignment directory to write.")],
    image_column: Annotated[str, typer.Option(help="Column with product photos.")] = "image",
    epochs: Annotated[int | None, typer.Option(min=1, max=1000)] = None,
    allow_download: AllowDownload = False,
    id_column: IdColumn = "id",
    text_columns: TextColumns = "title,description",
    strict: Strict = False,
    verbose: Verbose = False,
) -> None:
    """Learn an image-text alignment from photo/title pairs, for zero-shot image classification
    into any taxonomy (`classify --image-column ... --alignment DIR`)."""
    _setup_logging(verbose)
    from . import service

    printer = _BadRowPrinter()
    with _reported(printer):
        columns = _columns(id_column, text_columns, image_column, "category", " > ")
        outcome = service.align_file(
            input,
            out,
            columns=columns,
            epochs=epochs,
            strict=strict,
            on_bad_row=printer,
            reading=printer.reading(allow_download),
        )
    last = outcome.history[-1] if outcome.history else {}
    retrieval = last.get("valid_retrieval_accuracy")
    typer.echo(
        f"aligned {outcome.pairs} photo/text pairs in {outcome.seconds:.0f} s"
        + (f"; held-out retrieval accuracy {retrieval:.3f}" if retrieval is not None else "")
    )
    typer.echo(f"alignment: {outcome.model_dir}")


@app.command()
def evaluate(
    predictions: Annotated[
        Path, typer.Argument(help="Predictions file (id, category, confidence).")
    ],
    gold: Annotated[Path, typer.Option("--gold", "-g", help="Labelled products file.")],
    report: Annotated[Path | None, typer.Option(help="Write a self-contained HTML report.")] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write all metrics as JSON.")
    ] = None,
    taxonomy: Annotated[
        str | None,
        typer.Option(
            "--taxonomy",
            "-t",
            help="Resolve gold labels in this taxonomy (default: the gold file's own paths).",
        ),
    ] = None,
    id_column: IdColumn = "id",
    text_columns: Annotated[
        str,
        typer.Option(
            help="Comma-separated gold-file columns that title the report's misclassified "
            "examples (optional)."
        ),
    ] = "title,description",
    image_column: Annotated[
        str | None,
        typer.Option(
            help="Gold-file column with product photos (local paths, relative to the gold "
            "file's folder), shown with the report's misclassified examples. None by default."
        ),
    ] = None,
    label_column: LabelColumn = "category",
    label_separator: LabelSeparator = " > ",
    strict: Strict = False,
    verbose: Verbose = False,
) -> None:
    """Score predictions against gold labels: flat, per-level, hierarchical, calibration."""
    _setup_logging(verbose)
    from . import service

    printer = _BadRowPrinter()
    with _reported(printer):
        columns = _columns(id_column, text_columns, image_column, label_column, label_separator)
        outcome = service.evaluate_files(
            predictions,
            gold,
            taxonomy=taxonomy,
            columns=columns,
            strict=strict,
            json_path=json_out,
            report_path=report,
            on_bad_row=printer,
        )
    typer.echo(outcome.result.summary())
    if outcome.missing_predictions:
        typer.echo(f"gold rows without a prediction: {outcome.missing_predictions}", err=True)
    for label, path in (("metrics", outcome.json_path), ("report", outcome.report_path)):
        if path:
            typer.echo(f"{label}: {path}")


@app.command()
def demo(
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for predictions and report.")
    ] = Path("demo-output"),
    encoder: Annotated[str, typer.Option(help="Encoder, as for classify.")] = "auto",
    verbose: Verbose = False,
) -> None:
    """Classify a bundled sample of real products into the Shopify taxonomy and score it."""
    _setup_logging(verbose)
    from . import service

    with _reported():
        outcome = service.run_demo(out, encoder=encoder)
    c, e = outcome.classify, outcome.evaluate
    typer.echo(
        f"classified {c.written} bundled products into {c.taxonomy} zero-shot "
        f"({c.seconds:.1f} s; encoders: {', '.join(c.encoders)})"
    )
    typer.echo(e.result.summary())
    typer.echo(f"predictions: {c.output}\nmetrics: {e.json_path}\nreport: {e.report_path}")


@taxonomy_app.command("show")
def taxonomy_show(
    category: Annotated[str | None, typer.Argument(help="A category id, path or name.")] = None,
    taxonomy: TaxonomyOpt = "shopify",
    depth: Annotated[int, typer.Option(min=0, max=10, help="Levels of children to list.")] = 1,
) -> None:
    """Summarise a taxonomy, or one category with its children."""
    from . import service

    with _reported():
        lines = service.show_taxonomy(taxonomy, category, depth=depth)
    typer.echo("\n".join(lines))


@taxonomy_app.command("search")
def taxonomy_search(
    query: Annotated[str, typer.Argument(help="Words to find in category names.")],
    taxonomy: TaxonomyOpt = "shopify",
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
) -> None:
    """Find categories by name."""
    from . import service

    with _reported():
        hits = service.search_taxonomy(taxonomy, query, limit=limit)
    if not hits:
        typer.echo("no matching categories", err=True)
        raise typer.Exit(code=1)
    for cid, path in hits:
        typer.echo(f"{cid}\t{path}")


def _classify_batch(
    input: Path, out: Path, *, model: Path | None, store: Path | None, name: str | None,
    language: str, taxonomy: str | None, encoder: str, top_k: int,
    min_confidence: float | None, adapt: bool, batch_size: int, columns: Any, device: str,
    cascade: bool | None, fmt: str, resume: bool, engine: str, ray_address: str | None,
    concurrency: int, gpus_per_worker: float, part_rows: int, cache: bool, strict: bool,
) -> None:  # fmt: skip
    from tqdm import tqdm

    from .batch.job import JobSpec, classify_batch

    printer = _BadRowPrinter()
    with _reported(printer):
        spec = JobSpec(
            model=str(model) if model else None, store=str(store) if store else None,
            name=name, language=language, taxonomy=taxonomy, encoder=encoder,
            columns=columns, top_k=top_k, min_confidence=min_confidence, device=device,
            cascade=cascade, adapt=adapt, cache=cache,
        )  # fmt: skip
        with tqdm(unit=" products", desc="classifying", disable=not sys.stderr.isatty()) as bar:
            outcome = classify_batch(
                input, out, spec, fmt=fmt, engine=engine, resume=resume, part_rows=part_rows,
                strict=strict, ray_address=ray_address, concurrency=concurrency,
                batch_size=batch_size, gpus_per_worker=gpus_per_worker, progress=bar.update,
                on_bad_row=printer,
            )  # fmt: skip
    rate = outcome.written / max(outcome.seconds, 1e-9)
    resumed = f", {outcome.resumed_parts} parts done before" if outcome.resumed_parts else ""
    typer.echo(
        f"classified {outcome.written} products -> {outcome.output}/ ({outcome.parts} parts"
        f"{resumed}; {outcome.seconds:.1f} s, {rate:.0f}/s); {outcome.bad_rows} bad rows"
        + (f" in {outcome.output / '_bad_rows.jsonl'}" if engine == "local" else " (error column)")
    )


@app.command()
def export(
    model: Annotated[Path, typer.Argument(help="A trained model directory.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="New directory for the export.")],
    format: Annotated[str, typer.Option("--format", help="Export format: onnx.")] = "onnx",
    verbose: Verbose = False,
) -> None:
    """Export a model for a torch-free runtime (ONNX Runtime + tokenizers); the export loads
    with `classify --model OUT` like any model directory."""
    _setup_logging(verbose)
    from .export import export_model

    with _reported():
        path = export_model(model, out, fmt=format)
    typer.echo(f"exported {model} -> {path} ({format})")


@models_app.command("list")
def models_list(
    store: Annotated[Path, typer.Option("--store", help="The model store folder.")],
    name: Annotated[str | None, typer.Argument(help="One name (default: all).")] = None,
) -> None:
    """List stored versions, oldest first; * marks the current one."""
    from .store import ModelStore

    with _reported():
        model_store = ModelStore(store)
        names = [name] if name else model_store.names()
        if not names:
            typer.echo(f"no models in {store}")
        for n in names:
            for v in model_store.versions(n):
                acc = v.valid_metrics.get("accuracy")
                typer.echo(
                    f"{'*' if v.current else ' '} {n} {v.version} {v.kind or '?'} "
                    f"created {v.created_at or '?'}"
                    + (f" valid accuracy {acc:.4f}" if acc is not None else "")
                    + (f" parent {v.parent}" if v.parent else "")
                )


@models_app.command("show")
def models_show(
    name: Annotated[str, typer.Argument(help="The model's name.")],
    store: Annotated[Path, typer.Option("--store", help="The model store folder.")],
    version: Annotated[str | None, typer.Option(help="A version (default: current).")] = None,
) -> None:
    """Show one version (default: the current one) as JSON."""
    import json

    from .store import ModelStore

    with _reported():
        typer.echo(json.dumps(ModelStore(store).info(name, version).as_dict(), indent=2))


@models_app.command("promote")
def models_promote(
    name: Annotated[str, typer.Argument(help="The model's name.")],
    version: Annotated[str, typer.Argument(help="The version to make current.")],
    store: Annotated[Path, typer.Option("--store", help="The model store folder.")],
) -> None:
    """Make a version current (atomically; servers pick it up without a restart)."""
    from .store import ModelStore

    with _reported():
        ModelStore(store).promote(name, version)
    typer.echo(f"{name}: current version is now {version}")


@models_app.command("rollback")
def models_rollback(
    name: Annotated[str, typer.Argument(help="The model's name.")],
    store: Annotated[Path, typer.Option("--store", help="The model store folder.")],
) -> None:
    """Return to the version that was current before this one."""
    from .store import ModelStore

    with _reported():
        version = ModelStore(store).rollback(name)
    typer.echo(f"{name}: rolled back to {version}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
