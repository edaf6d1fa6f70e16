"""Command line: parse options, call the service layer, print results, map errors to exit codes.

Heavy libraries (torch, sentence-transformers, scikit-learn) are imported inside commands so
`taxonomist --help` starts in well under a second.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import logging
import os
import time
import typing
from collections.abc import Callable, Iterator
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
    # Rich's tables squeeze the help into a narrow column at 80 columns and cut defaults
    # and long words with an ellipsis; plain Click help wraps every word at any width
    rich_markup_mode=None,
)
taxonomy_app = typer.Typer(
    help="Inspect taxonomies: bundled (shopify, google) or files.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(taxonomy_app, name="taxonomy")
models_app = typer.Typer(
    help="A versioned model store: list, show, promote, roll back.", no_args_is_help=True
)
app.add_typer(models_app, name="models")

MAX_BAD_ROWS_SHOWN = 20


def _show_version(value: bool) -> None:
    if value:
        from . import __version__

        typer.echo(f"taxonomist {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_show_version,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    """Sort products into a category taxonomy with pretrained models."""


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
LabelSeparator = Annotated[
    str,
    typer.Option(help="Separator between levels in a label path.", show_default="' > '"),
]
Strict = Annotated[bool, typer.Option("--strict", help="Fail on the first bad row or repeated id.")]
Delimiter = Annotated[
    str | None,
    typer.Option(
        help="CSV field separator: a character, or comma, semicolon, tab, pipe. "
        "Default: sniffed from the header line (a .tsv is tab)."
    ),
]
Encoding = Annotated[
    str,
    typer.Option(help="Text encoding of the input files, e.g. utf-8, cp1252, latin-1, gb18030."),
]
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
    *,
    delimiter: str | None = None,
    encoding: str = "utf-8",
    keep_columns: str | None = None,
) -> ColumnSpec:
    texts = tuple(c.strip() for c in text_columns.split(",") if c.strip())
    keep: tuple[str, ...] | str = ()
    if keep_columns is not None:
        keep = (
            "all"
            if keep_columns.strip() == "all"
            else tuple(c.strip() for c in keep_columns.split(",") if c.strip())
        )
    return ColumnSpec(
        id_column,
        texts,
        image_column,
        label_column,
        label_separator,
        delimiter=delimiter,
        encoding=encoding,
        keep_columns=keep,
    )


@dataclasses.dataclass(frozen=True)
class _TrainingInput:
    """The options `train` and `tune` share: the labelled file's columns, its photos, and
    where the networks run. Declared once here; `_with_training_input` makes them options."""

    id_column: IdColumn = "id"
    text_columns: TextColumns = "title,description"
    image_column: ImageColumn = None
    allow_download: AllowDownload = False
    label_column: LabelColumn = "category"
    label_separator: LabelSeparator = " > "
    device: Device = "auto"

    def columns(self, *, delimiter: str | None, encoding: str) -> ColumnSpec:
        return _columns(
            self.id_column,
            self.text_columns,
            self.image_column,
            self.label_column,
            self.label_separator,
            delimiter=delimiter,
            encoding=encoding,
        )


def _with_training_input(command: Callable[..., None]) -> Callable[..., None]:
    """Typer reads a command's options from its signature: put `_TrainingInput`'s fields
    there in place of the command's `inputs` parameter (so --help lists them where that
    parameter stands), and call the command with them gathered into one `_TrainingInput`."""
    hints = typing.get_type_hints(_TrainingInput, include_extras=True)
    shared = [
        inspect.Parameter(
            f.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=f.default,
            annotation=hints[f.name],
        )
        for f in dataclasses.fields(_TrainingInput)
    ]  # fmt: skip
    signature = inspect.signature(command, eval_str=True)
    parameters = []
    for parameter in signature.parameters.values():
        parameters.extend(shared if parameter.name == "inputs" else [parameter])

    @functools.wraps(command)
    def wrapper(**options: Any) -> None:
        inputs = _TrainingInput(**{p.name: options.pop(p.name) for p in shared})
        return command(inputs=inputs, **options)

    wrapper.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    return wrapper


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
    # library chatter (weight-loading bars, deprecation notices, the ONNX exporter's
    # "torchvision is not installed" for operators we never export) is not for our users
    for name in ("sentence_transformers", "transformers", "httpx", "onnxscript"):
        logging.getLogger(name).setLevel(logging.ERROR)
    # long steps (embedding a taxonomy's categories) say how far they are, TTY or not
    logging.getLogger("taxonomist.progress").setLevel(logging.INFO)
    if not verbose:
        # transformers configures its own handler at import; this is the switch it reads
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        # torch installs its own handler and levels at import, so only its switch reaches
        # the ONNX exporter's warnings (four "torchvision is not installed" per export)
        os.environ.setdefault("TORCH_LOGS", "-onnx")


@contextmanager
def _progress(
    *, rows_in: Path | None = None, prefix: str = ""
) -> Iterator[tuple[Callable[[str, int, int], None], Callable[[int], None]]]:
    """A progress printer for a long command: bars on a terminal, else a line every ~10 s
    per stage with done/total and the time left, and one line as each stage ends. Deep
    steps (encoding a catalogue) reach it too. Yields the (stage, done, total) callback and
    a counter of classified rows, whose total is estimated from `rows_in`."""
    from .progress import ProgressPrinter, estimate_rows, reporting_to

    lines = ProgressPrinter(prefix=prefix)
    total = estimate_rows(rows_in) if rows_in is not None else 0
    done = 0

    def advance(count: int) -> None:
        nonlocal done
        done += count
        # an estimate that fell short becomes "unknown" rather than a stage ended early
        lines("classifying", done, total if total >= done else 0)

    try:
        with reporting_to(lines):
            yield lines, advance
    finally:
        lines.close()


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
            help="Zero-shot encoder: auto (MiniLM for English, multilingual USE for Chinese), "
            "minilm, e5, use, fake, or a sentence-transformers directory."
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
    review_db: Annotated[
        str | None,
        typer.Option(
            help="Queue the products below the model's routing thresholds for review in this "
            "database: sqlite:///PATH, a file path, or postgresql://USER@HOST:PORT/DB.",
        ),
    ] = None,
    keep_columns: Annotated[
        str | None,
        typer.Option(
            help="Input columns to copy to the output (comma-separated), or 'all'. "
            "A name taken by an output column gets the prefix input_."
        ),
    ] = None,
    delimiter: Delimiter = None,
    encoding: Encoding = "utf-8",
    explain: Annotated[
        bool,
        typer.Option(
            "--explain",
            help="With --model: also write OUT.explanations.jsonl (the words that drove each "
            "prediction, the nearest training products, photo heat maps).",
        ),
    ] = False,
    llm_url: Annotated[
        str | None,
        typer.Option(
            help="OpenAI-compatible endpoint (e.g. http://127.0.0.1:8080/v1) whose LLM "
            "re-ranks the top candidates of products below --llm-threshold.",
            rich_help_panel="LLM re-ranking",
        ),
    ] = None,
    llm_model: Annotated[
        str | None,
        typer.Option(help="Model name at --llm-url.", rich_help_panel="LLM re-ranking"),
    ] = None,
    llm_threshold: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Re-rank below this confidence.",
            rich_help_panel="LLM re-ranking",
        ),
    ] = 0.5,
    llm_top_k: Annotated[
        int,
        typer.Option(min=2, max=20, help="Candidates shown.", rich_help_panel="LLM re-ranking"),
    ] = 5,
    llm_timeout: Annotated[
        float,
        typer.Option(min=0.1, help="Seconds per request.", rich_help_panel="LLM re-ranking"),
    ] = 30.0,
    llm_budget: Annotated[
        int,
        typer.Option(min=0, help="Most requests per job.", rich_help_panel="LLM re-ranking"),
    ] = 1000,
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
                             label_separator, delimiter=delimiter, encoding=encoding),
            keep_columns=keep_columns,
            device=device, cascade=cascade, fmt=format or "parquet", resume=resume,
            engine=engine, ray_address=ray_address, concurrency=concurrency,
            gpus_per_worker=gpus_per_worker, part_rows=part_rows, cache=cache, strict=strict,
        )  # fmt: skip
        return
    from . import service

    printer = _BadRowPrinter()
    with _reported(printer):
        if explain and model is None:
            raise TaxonomistError("--explain needs a trained --model")
        columns = _columns(
            id_column,
            text_columns,
            image_column,
            label_column,
            label_separator,
            delimiter=delimiter,
            encoding=encoding,
            keep_columns=keep_columns,
        )
        llm = None
        if llm_url or llm_model:
            from .llm import LLMConfig

            llm = LLMConfig(
                url=llm_url or "",
                model=llm_model or "",
                threshold=llm_threshold,
                top_k=llm_top_k,
                timeout=llm_timeout,
                budget=llm_budget,
            )
        with _progress(rows_in=input) as (lines, advance):
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
                progress=advance,
                on_bad_row=printer,
                on_image_problem=printer.image_problem,
                device=device,
                llm=llm,
                cascade=cascade,
                review_db=review_db,
            )
    rate = outcome.written / max(outcome.seconds, 1e-9)
    typer.echo(
        f"classified {outcome.written} products into {outcome.taxonomy} -> {outcome.output} "
        f"({outcome.seconds:.1f} s, {rate:.0f}/s); {len(outcome.report.bad_rows)} bad rows skipped"
        + (f", {len(outcome.report.image_problems)} without a usable image" if image_column else "")
        + (
            f"; {outcome.report.duplicate_ids} "
            + ("row repeats" if outcome.report.duplicate_ids == 1 else "rows repeat")
            + " an earlier id"
            if outcome.report.duplicate_ids
            else ""
        )
    )
    if outcome.llm_summary:
        typer.echo(outcome.llm_summary)
    if outcome.queued is not None:
        typer.echo(f"queued {outcome.queued} products for review in {review_db}")
    if explain and model is not None:
        from .analysis.explain import explain_file, explanation_path

        with _reported():
            path = explanation_path(out)
            count = explain_file(input, model, path, columns=columns)
        typer.echo(f"explained {count} predictions -> {path}")


@app.command()
@_with_training_input
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
    unlabelled: Annotated[
        Path | None,
        typer.Option(
            help="The catalogue's unlabelled products (same columns; a label column is "
            "ignored): --kind fewshot self-trains on them where cross-validation says it helps."
        ),
    ] = None,
    preset: Annotated[str, typer.Option(help="fast | balanced | best.")] = "balanced",
    kind: Annotated[
        str | None,
        typer.Option(
            help="Override the preset's kind: linear | knn | head | finetune | ensemble | "
            "fewshot (5-20 labels a category) | image | fusion (with --image-column, fusion "
            "is the default)."
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
    inputs: _TrainingInput = _TrainingInput(),
    cascade: Annotated[
        bool,
        typer.Option(
            "--cascade",
            help="Ensembles: classify with the cascade by default (TF-IDF members first; the "
            "encoder only below a threshold learned on validation).",
        ),
    ] = False,
    precision_target: Annotated[
        float,
        typer.Option(
            min=0.5,
            max=1.0,
            help="Per-category routing thresholds are chosen on validation to reach this "
            "precision; products below them go to review.",
        ),
    ] = 0.99,
    delimiter: Delimiter = None,
    encoding: Encoding = "utf-8",
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

    with _reported(printer), _progress(prefix="training") as (progress, _):
        columns = inputs.columns(delimiter=delimiter, encoding=encoding)
        outcome = service.train_file(
            input,
            out,
            valid_path=valid,
            unlabelled_path=unlabelled,
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
            reading=printer.reading(inputs.allow_download),
            device=inputs.device,
            precision_target=precision_target,
            store=store,
            name=name,
            promote=promote or None,
        )
    m = outcome.valid_metrics
    typer.echo(
        f"trained {outcome.kind} on {outcome.train_rows} rows in {outcome.seconds:.0f} s; "
        f"validation ({outcome.valid_rows} rows): accuracy {m.get('accuracy', float('nan')):.4f}, "
        f"macro-F1 {m.get('f1_macro', float('nan')):.4f}, ECE {m.get('ece', float('nan')):.4f}"
    )
    if "automation_rate" in m:
        typer.echo(
            f"automation rate at {precision_target:g} precision (validation): "
            f"{m['automation_rate']:.3f}"
        )
    typer.echo(f"model: {outcome.model_dir}")
    if outcome.curve_path:
        typer.echo(f"training curve: {outcome.curve_path}")


@app.command()
@_with_training_input
def tune(
    input: Annotated[Path, typer.Argument(help="Labelled products file.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Model directory for the best model.")],
    time_budget: Annotated[float, typer.Option(min=0.1, help="Minutes to spend searching.")] = 10.0,
    valid: Annotated[Path | None, typer.Option(help="Validation file.")] = None,
    preset: Annotated[str, typer.Option(help="fast | balanced | best.")] = "balanced",
    kind: Annotated[str | None, typer.Option(help="Override the preset's kind.")] = None,
    taxonomy: TaxonomyOpt = None,
    seed: Annotated[int, typer.Option(help="Seed for the split and the search.")] = 13,
    inputs: _TrainingInput = _TrainingInput(),
    delimiter: Delimiter = None,
    encoding: Encoding = "utf-8",
    strict: Strict = False,
    verbose: Verbose = False,
) -> None:
    """Random-search a preset's hyper-parameters on the validation split; keep the best."""
    _setup_logging(verbose)
    from . import service

    printer = _BadRowPrinter()
    started = time.monotonic()

    def on_trial(row: dict) -> None:
        used = time.monotonic() - started
        typer.echo(
            f"trial {row['trial']}: validation accuracy {row['valid_accuracy']:.4f}, "
            f"log-loss {row['valid_log_loss']:.4f} ({row['seconds']} s; "
            f"{used / 60:.1f} of {time_budget:g} min used): {row.get('verdict', '')}",
            err=True,
        )

    with _reported(printer), _progress(prefix="tuning"):
        columns = inputs.columns(delimiter=delimiter, encoding=encoding)
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
            reading=printer.reading(inputs.allow_download),
            device=inputs.device,
        )
    m = outcome.valid_metrics
    typer.echo(
        f"kept of {len(outcome.trials)} trials: {outcome.kind}, validation accuracy "
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
    delimiter: Delimiter = None,
    encoding: Encoding = "utf-8",
    strict: Strict = False,
    verbose: Verbose = False,
) -> None:
    """Learn an image-text alignment from photo/title pairs, for zero-shot image classification
    into any taxonomy (`classify --image-column ... --alignment DIR`)."""
    _setup_logging(verbose)
    from . import service

    printer = _BadRowPrinter()
    with _reported(printer):
        columns = _columns(
            id_column,
            text_columns,
            image_column,
            "category",
            " > ",
            delimiter=delimiter,
            encoding=encoding,
        )
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
    delimiter: Delimiter = None,
    encoding: Encoding = "utf-8",
    strict: Strict = False,
    verbose: Verbose = False,
) -> None:
    """Score predictions against gold labels: flat, per-level, hierarchical, calibration."""
    _setup_logging(verbose)
    from . import service

    printer = _BadRowPrinter()
    with _reported(printer):
        columns = _columns(
            id_column,
            text_columns,
            image_column,
            label_column,
            label_separator,
            delimiter=delimiter,
            encoding=encoding,
        )
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
    for warning in outcome.warnings:
        typer.echo(f"warning: {warning}", err=True)
    if outcome.missing_predictions:
        typer.echo(f"gold rows without a prediction: {outcome.missing_predictions}", err=True)
    for what, count in (
        ("gold rows", outcome.duplicate_gold),
        ("predictions", outcome.duplicate_predictions),
    ):
        if count:
            typer.echo(f"{what} repeating an earlier id (not scored): {count}", err=True)
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

    with _reported(), _progress(rows_in=service.demo_input()) as (_, advance):
        outcome = service.run_demo(out, encoder=encoder, progress=advance)
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
    query: Annotated[
        str, typer.Argument(help="Words to find in category names and paths, any order.")
    ],
    taxonomy: TaxonomyOpt = "shopify",
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    language: Annotated[
        str | None,
        typer.Option(
            help="Show paths in this language (zh: Shopify's Chinese names); words match "
            "in every language. Default: the query's script decides."
        ),
    ] = None,
) -> None:
    """Find categories by name: every word, any order, singular or plural."""
    from . import service

    with _reported():
        outcome = service.search_taxonomy(taxonomy, query, limit=limit, language=language)
    if not outcome.hits:
        typer.echo("no matching categories", err=True)
        raise typer.Exit(code=1)
    if not outcome.every_word:
        typer.echo("no category matches every word; closest matches:", err=True)
    for cid, path in outcome.hits:
        typer.echo(f"{cid}\t{path}")


def _classify_batch(
    input: Path, out: Path, *, model: Path | None, store: Path | None, name: str | None,
    language: str, taxonomy: str | None, encoder: str, top_k: int,
    min_confidence: float | None, adapt: bool, batch_size: int, columns: Any, device: str,
    cascade: bool | None, fmt: str, resume: bool, engine: str, ray_address: str | None,
    concurrency: int, gpus_per_worker: float, part_rows: int, cache: bool, strict: bool,
    keep_columns: str | None,
) -> None:  # fmt: skip
    from .batch.job import JobSpec, classify_batch

    printer = _BadRowPrinter()
    with _reported(printer):
        if keep_columns:
            raise TaxonomistError("--keep-columns is not supported by batch jobs (--format)")
        spec = JobSpec(
            model=str(model) if model else None, store=str(store) if store else None,
            name=name, language=language, taxonomy=taxonomy, encoder=encoder,
            columns=columns, top_k=top_k, min_confidence=min_confidence, device=device,
            cascade=cascade, adapt=adapt, cache=cache,
        )  # fmt: skip
        with _progress(rows_in=input if input.is_file() else None) as (_lines, advance):
            outcome = classify_batch(
                input, out, spec, fmt=fmt, engine=engine, resume=resume, part_rows=part_rows,
                strict=strict, ray_address=ray_address, concurrency=concurrency,
                batch_size=batch_size, gpus_per_worker=gpus_per_worker, progress=advance,
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


@app.command()
def audit(
    input: Annotated[Path, typer.Argument(help="Labelled products: .csv, .tsv, .jsonl, .parquet.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Ranked issues, .csv.")],
    report: Annotated[
        Path | None, typer.Option(help="Also write a readable HTML page of the issues.")
    ] = None,
    review_db: Annotated[
        str | None, typer.Option(help="Put each suspected error into this review queue.")
    ] = None,
    preset: Annotated[
        str, typer.Option(help="Model that scores each row out of fold: fast | balanced | best.")
    ] = "balanced",
    folds: Annotated[int, typer.Option(min=2, max=20, help="Grouped cross-validation folds.")] = 5,
    taxonomy: TaxonomyOpt = None,
    seed: Annotated[int, typer.Option(help="Seed for the folds.")] = 13,
    id_column: IdColumn = "id",
    text_columns: TextColumns = "title,description",
    label_column: LabelColumn = "category",
    label_separator: LabelSeparator = " > ",
    verbose: Verbose = False,
) -> None:
    """Find labels that look wrong: out-of-fold probabilities, confident learning (cleanlab),
    the level of the tree where each label goes wrong, and identical or near-identical
    titles with different labels."""
    _setup_logging(verbose)
    from .analysis.audit import audit_file

    printer = _BadRowPrinter()
    with _reported(printer):
        columns = _columns(id_column, text_columns, None, label_column, label_separator)
        result = audit_file(
            input, out, report=report, review_db=review_db, preset=preset, folds=folds,
            taxonomy=taxonomy, columns=columns, seed=seed, on_bad_row=printer,
        )  # fmt: skip
    counts = ", ".join(f"{n} {r.replace('_', ' ')}" for r, n in result.counts().items())
    typer.echo(
        f"{len(result.issues)} suspected label errors among {result.rows} rows"
        f"{' (' + counts + ')' if counts else ''}; out-of-fold accuracy "
        f"{result.oof_accuracy:.3f}"
    )
    typer.echo(f"issues: {out}")
    if report:
        typer.echo(f"report: {report}")


@app.command("suggest-labels")
def suggest_labels(
    pool: Annotated[Path, typer.Argument(help="Unlabelled products: .csv, .jsonl, .parquet.")],
    model: Annotated[Path, typer.Option("--model", "-m", help="A trained model directory.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Suggestions, .csv.")],
    n: Annotated[int, typer.Option("-n", min=1, max=100000, help="How many to suggest.")] = 200,
    labelled: Annotated[
        Path | None,
        typer.Option(
            help="Products labelled since the model was trained (skipped with "
            "their near-copies; the model's own training rows always are)."
        ),
    ] = None,
    review_db: Annotated[
        str | None, typer.Option(help="Put the suggestions into this review queue.")
    ] = None,
    id_column: IdColumn = "id",
    text_columns: TextColumns = "title,description",
    label_column: LabelColumn = "category",
    label_separator: LabelSeparator = " > ",
    verbose: Verbose = False,
) -> None:
    """Which products to label next: the most uncertain (per level of the tree), spread out
    over the catalogue, near-copies of labelled products skipped."""
    _setup_logging(verbose)
    from .analysis.active import suggest_file

    printer = _BadRowPrinter()
    with _reported(printer):
        columns = _columns(id_column, text_columns, None, label_column, label_separator)
        suggestions = suggest_file(
            pool, model, out, n=n, labelled_path=labelled, review_db=review_db,
            columns=columns, on_bad_row=printer,
        )  # fmt: skip
    typer.echo(f"suggested {len(suggestions)} products to label -> {out}")


@app.command()
def serve(
    store: Annotated[
        Path | None, typer.Option(help="Model store: serve every name in it (watched).")
    ] = None,
    model: Annotated[Path | None, typer.Option(help="One model directory to serve.")] = None,
    name: Annotated[
        str | None, typer.Option(help="Name to serve --model under (default: its folder).")
    ] = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    open_access: Annotated[
        bool, typer.Option("--open", help="No API keys (local use only; see the README).")
    ] = False,
    keys: Annotated[
        Path | None,
        typer.Option(help="File of hashed API keys with scopes (also TAXONOMIST_API_KEYS)."),
    ] = None,
    allow_download: AllowDownload = False,
    review_db: Annotated[
        str | None,
        typer.Option(
            help="Serve the review queue, its page (/review) and retraining from this database "
            "(sqlite:///PATH, a file path, or postgresql://...).",
        ),
    ] = None,
    verbose: Verbose = False,
) -> None:
    """Serve models over HTTP: REST API, Open Inference Protocol v2, a web page, /metrics."""
    _setup_logging(verbose)
    logging.getLogger("taxonomist.api").setLevel(logging.INFO)  # one line per request
    if (store is None) == (model is None):
        _fail(TaxonomistError("give --store DIR or --model DIR (one of them)"))
    try:
        import uvicorn

        from .api import ApiSettings, create_app
    except ImportError as exc:
        _fail(TaxonomistError(f"serving needs {exc.name}: pip install 'taxonomist[api]'"))
    values: dict = {"store": store, "model": model, "name": name, "open_access": open_access}
    values["allow_download"] = allow_download
    if keys is not None:
        values["keys_file"] = keys
    with _reported():
        settings = ApiSettings(**values)
        if not settings.open_access and settings.keys_file is None and not settings.keys:
            raise TaxonomistError(
                "no API keys: pass --keys FILE (make entries with `taxonomist api-key`), set "
                "TAXONOMIST_API_KEYS, or --open for local use without keys"
            )
        if settings.open_access and host not in ("127.0.0.1", "localhost", "::1"):
            typer.echo(f"warning: --open on {host}: anyone who reaches it can use it", err=True)
        routers = []
        if review_db is not None:
            from .api.review_routes import open_review_router

            routers.append(open_review_router(review_db, store=store, model=model))
        server_app = create_app(settings, routers=routers)
    # process-wide choices belong to the server process, made once here
    from prometheus_client import disable_created_metrics

    disable_created_metrics()
    typer.echo(f"serving on http://{host}:{port}/ (API docs at /docs)", err=True)
    uvicorn.run(server_app, host=host, port=port, access_log=False, log_config=None)


@app.command("api-key")
def api_key(
    scopes: Annotated[
        str, typer.Option(help="Comma-separated scopes: classify, review, admin.")
    ] = "classify",
    name: Annotated[str, typer.Option(help="A name for the key, shown in logs.")] = "",
) -> None:
    """Make a random API key: prints the key (give it to the client) and the line to add to
    the key file (only its hash; the server never stores the key)."""
    from .api.auth import new_key

    with _reported():
        key, line = new_key(scopes.split(","), name)
    typer.echo(f"key: {key}")
    typer.echo(f"key file line: {line}")


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


review_app = typer.Typer(
    help="The review queue: export reviewed labels (reviewers work in the web page or API).",
    no_args_is_help=True,
)
app.add_typer(review_app, name="review")
ReviewDb = Annotated[
    str,
    typer.Option(
        "--db", help="Review database: sqlite:///PATH, a file path, or postgresql://USER@HOST/DB."
    ),
]


@review_app.command("export")
def review_export(
    db: ReviewDb,
    out: Annotated[Path, typer.Option("--out", "-o", help="labels.csv or labels.parquet.")],
) -> None:
    """Write the latest accepted or corrected label of every reviewed product."""
    with _reported():
        from .review import ReviewStore
        from .review.export import export_labels

        with ReviewStore(db) as store:
            count = export_labels(store, out)
    typer.echo(f"exported {count} reviewed labels -> {out}")


@app.command()
def retrain(
    store: Annotated[Path, typer.Option("--store", help="The model store folder.")],
    name: Annotated[str, typer.Option("--name", help="The model's name in the store.")],
    review_db: Annotated[
        str | None,
        typer.Option(help="Review database (default: review.sqlite in the store folder)."),
    ] = None,
    alpha: Annotated[
        float,
        typer.Option(
            min=0.0001, max=0.5, help="Refuse a candidate worse on the holdout at this p-value."
        ),
    ] = 0.05,
    verbose: Verbose = False,
) -> None:
    """Train a candidate on the current version's data plus reviewed labels; promote it only
    when it is not worse on the frozen holdout and better on reviewed products it did not
    train on. Exit code 2 when the candidate is refused (the current version keeps serving)."""
    _setup_logging(verbose)
    with _reported():
        from .review.db import DEFAULT_FILE
        from .review.loop import retrain as run_retrain

        report = run_retrain(store, name, review_db or str(store / DEFAULT_FILE), alpha=alpha)
    h = report.holdout
    typer.echo(
        f"candidate {report.candidate} (from {report.current}): holdout accuracy "
        f"{h['candidate_accuracy']:.4f} vs {h['current_accuracy']:.4f} on {h['rows']} rows"
    )
    for reason in report.reasons:
        typer.echo(("" if report.promoted else "refused: ") + reason)
    typer.echo(f"report: {report.report_path}")
    if not report.promoted:
        raise typer.Exit(code=2)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
