"""Read products from CSV, JSONL or Parquet in bounded batches, validating every row once.

A bad row (empty text, undecodable bytes, unknown label, malformed line) becomes a `BadRow`
naming file, line and field; the good rows around it are still yielded. `strict=True` turns the
first bad row into a `DataError` instead.

With an image column, each image is found and fully decoded once. A bad image (missing,
corrupt, not an image, remote and not fetched) is an image problem, listed like a bad row, but
its product is kept without the image: its text still classifies. Only a row with neither text
nor a usable image is a bad row.
"""

from __future__ import annotations

import csv
import json
import logging
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import ConfigError, DataError
from ..taxonomy import PATH_SEPARATOR, Category, Taxonomy

logger = logging.getLogger(__name__)

FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
}
MAX_TEXT_CHARS = 20_000  # longer texts are cut: encoders see ~256 tokens anyway

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


@dataclass(frozen=True)
class ColumnSpec:
    """Which columns hold what. Of `text_columns`, those present in the file are used."""

    id_column: str = "id"
    text_columns: tuple[str, ...] = ("title", "description")
    image_column: str | None = None
    label_column: str = "category"
    label_separator: str = PATH_SEPARATOR

    def labels_only(self) -> ColumnSpec:
        """The same columns, reading the label column as the text: for gold-label files,
        where products need an id and a label but no title."""
        return replace(self, text_columns=(self.label_column,), image_column=None)

    def __post_init__(self) -> None:
        if not self.text_columns or any(not c.strip() for c in self.text_columns):
            raise ConfigError(f"text columns must be non-empty names, got {self.text_columns!r}")
        if not self.label_separator.strip():
            raise ConfigError("label separator must contain a visible character")


@dataclass(frozen=True)
class Product:
    """One validated product. `line` is where it was read (1-based), for messages."""

    id: str
    text: str
    line: int
    label: Category | None = None
    image: str | None = None


@dataclass(frozen=True)
class BadRow:
    file: str
    line: int
    field: str | None
    reason: str
    value: str | None = None  # the offending cell, where showing it helps (an image reference)

    def __str__(self) -> str:
        where = f"{self.file}: line {self.line}"
        text = (
            f"{where}: field '{self.field}': {self.reason}"
            if self.field
            else f"{where}: {self.reason}"
        )
        if self.value:
            shown = self.value if len(self.value) <= 200 else self.value[:197] + "..."
            text += f" ({shown!r})"
        return text


@dataclass
class ReadReport:
    """What reading a file found: counts, every bad row, and every image problem.

    An image problem's product is counted in `good` (it was yielded, without its image).
    """

    file: str
    rows: int = 0
    good: int = 0
    bad_rows: list[BadRow] = field(default_factory=list)
    image_problems: list[BadRow] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    text_columns: list[str] = field(default_factory=list)


def detect_format(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DataError(
            f"unsupported file type '{path.suffix or '(none)'}'; use one of "
            f"{', '.join(sorted(FORMATS))}",
            file=path,
        )
    return fmt


class _Undecodable(Exception):
    pass


def _iter_csv(path: Path, delimiter: str) -> Iterator[tuple[int, dict[str, Any] | BadRow]]:
    # surrogateescape keeps undecodable bytes as lone surrogates, so a bad byte is caught
    # on its row instead of aborting the whole file
    with open(path, encoding="utf-8-sig", errors="surrogateescape", newline="") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        try:
            header = next(reader)
        except StopIteration:
            raise DataError("the file is empty (no header line)", file=path) from None
        except csv.Error as exc:
            raise DataError(f"cannot parse the header: {exc}", file=path, row=1) from None
        if any(_has_bad_bytes(h) for h in header):
            raise DataError("header has bytes that are not UTF-8", file=path, row=1)
        header = [h.strip() for h in header]
        yield 1, {"__header__": header}
        while True:
            start = reader.line_num + 1  # a quoted field may span lines: report the first
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise DataError(f"malformed CSV: {exc}", file=path, row=reader.line_num) from None
            line = start
            if not values or all(not v.strip() for v in values):
                continue
            if len(values) != len(header):
                yield (
                    line,
                    BadRow(
                        str(path),
                        line,
                        None,
                        f"expected {len(header)} fields, found {len(values)}",
                    ),
                )
                continue
            yield line, dict(zip(header, values))


def _iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any] | BadRow]]:
    with open(path, encoding="utf-8-sig", errors="surrogateescape") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                yield line_no, BadRow(str(path), line_no, None, f"invalid JSON ({exc.msg})")
                continue
            if not isinstance(record, dict):
                yield line_no, BadRow(str(path), line_no, None, "expected a JSON object")
                continue
            yield line_no, record


def _iter_parquet(path: Path, batch_size: int) -> Iterator[tuple[int, dict[str, Any] | BadRow]]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a bad file
        raise DataError(f"not a readable Parquet file ({exc})", file=path) from None
    yield 0, {"__header__": parquet.schema_arrow.names}
    row = 0
    for batch in parquet.iter_batches(batch_size=batch_size):
        for record in batch.to_pylist():
            row += 1
            yield row, record


class _ImageChecker:
    """Turns an image cell into (absolute path, None) or (None, reason), decoding once.

    Remembers answers by cell, so a placeholder picture shared by many rows (or one URL) is
    checked once per file.
    """

    _MEMO_LIMIT = 10_000

    def __init__(
        self, column: str, base_dir: Path, allow_download: bool, download_dir: Path | None
    ) -> None:
        # imported here so reading text-only files never loads PIL
        from ..images import check_image, resolve_image_ref

        self._check = check_image
        self._resolve = resolve_image_ref
        self.column = column
        self.base_dir = base_dir
        self.allow_download = allow_download
        self.download_dir = download_dir
        self._memo: dict[str, tuple[str | None, str | None]] = {}

    def __call__(self, cell: str) -> tuple[str | None, str | None]:
        if cell in self._memo:
            return self._memo[cell]
        path, problem = self._resolve(
            cell,
            self.base_dir,
            allow_download=self.allow_download,
            download_dir=self.download_dir,
        )
        if path is not None:
            problem = self._check(path)
        answer = (str(path) if path is not None and problem is None else None, problem)
        if len(self._memo) >= self._MEMO_LIMIT:
            self._memo.clear()
        self._memo[cell] = answer
        return answer


def _has_bad_bytes(text: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in text)


def _cell(record: dict[str, Any], column: str) -> str:
    value = record.get(column)
    if value is None:
        return ""
    if isinstance(value, float) and value != value:  # NaN from Parquet
        return ""
    return str(value)


def read_products(
    path: str | Path,
    columns: ColumnSpec = ColumnSpec(),
    *,
    taxonomy: Taxonomy | None = None,
    require_label: bool = False,
    strict: bool = False,
    batch_size: int = 1024,
    report: ReadReport | None = None,
    on_bad_row: Callable[[BadRow], None] | None = None,
    on_image_problem: Callable[[BadRow], None] | None = None,
    allow_download: bool = False,
    download_dir: str | Path | None = None,
) -> Iterator[list[Product]]:
    """Yield validated products from `path` in lists of at most `batch_size`.

    Args:
        path: a .csv, .tsv, .jsonl/.ndjson or .parquet file.
        columns: column names; missing text columns are skipped if at least one is present.
        taxonomy: resolves labels (full path, id, or unambiguous name) when labels are read.
        require_label: the label column must exist and every row needs a resolvable label.
        strict: raise `DataError` at the first bad row instead of reporting it. Image
            problems are never raised: their product is still usable by its text.
        report: filled with counts, bad rows and image problems as reading proceeds.
        on_bad_row: called for each bad row as it is found.
        on_image_problem: called for each image problem (field: the image column) as it is
            found; the product is yielded with `image=None`.
        allow_download: fetch http(s) image URLs (otherwise each is an image problem).
        download_dir: where fetched images go; default `<taxonomist cache>/images`.

    With `columns.image_column`, each cell is resolved (relative paths from the data file's
    folder) and fully decoded once; `Product.image` is the absolute path of a usable image.
    A row with empty text but a usable image is an image-only product with text "".

    Raises:
        DataError: missing file, unsupported type, missing columns, unreadable file, or any
            bad row when `strict`.
    """
    path = Path(path)
    if not path.exists():
        raise DataError("file not found", file=path)
    if path.is_dir():
        raise DataError("is a directory, expected a data file", file=path)
    fmt = detect_format(path)
    report = report if report is not None else ReadReport(str(path))
    images = (
        _ImageChecker(
            columns.image_column,
            path.parent,
            allow_download,
            Path(download_dir) if download_dir is not None else None,
        )
        if columns.image_column
        else None
    )
    if fmt == "parquet":
        rows = _iter_parquet(path, batch_size)
    elif fmt == "jsonl":
        rows = _iter_jsonl(path)
    else:
        rows = _iter_csv(path, "\t" if fmt == "tsv" else ",")

    text_cols: list[str] | None = None
    has_id = has_label = False
    seen_header = fmt == "jsonl"
    batch: list[Product] = []

    def bad(row: BadRow) -> None:
        if strict:
            raise DataError(row.reason, file=row.file, row=row.line, field=row.field)
        report.bad_rows.append(row)
        if on_bad_row:
            on_bad_row(row)

    def image_problem(row: BadRow) -> None:
        report.image_problems.append(row)
        if on_image_problem:
            on_image_problem(row)

    def resolve_columns(names: list[str]) -> None:
        nonlocal text_cols, has_id, has_label
        report.columns = list(names)
        has_label = columns.label_column in names
        if require_label and not has_label:
            raise DataError(
                f"missing label column '{columns.label_column}'; found columns {names}. "
                "Name it with --label-column",
                file=path,
                field=columns.label_column,
            )
        text_cols = [c for c in columns.text_columns if c in names]
        if not text_cols:
            raise DataError(
                f"none of the text columns {list(columns.text_columns)} is present; found "
                f"columns {names}. Name yours with --text-columns",
                file=path,
                field=",".join(columns.text_columns),
            )
        report.text_columns = text_cols
        has_id = columns.id_column in names
        if not has_id:
            logger.warning(
                "%s: no '%s' column; rows are identified by line number", path, columns.id_column
            )
        if columns.image_column and columns.image_column not in names:
            raise DataError(
                f"missing image column '{columns.image_column}'; found columns {names}",
                file=path,
                field=columns.image_column,
            )

    for line, record in rows:
        if isinstance(record, dict) and "__header__" in record:
            resolve_columns(record["__header__"])
            seen_header = True
            continue
        report.rows += 1
        if isinstance(record, BadRow):
            bad(record)
            continue
        if text_cols is None:  # JSONL: columns come from the first object
            resolve_columns(list(record))
        assert text_cols is not None and seen_header
        product = _validate(
            path, line, record, text_cols, columns, taxonomy, has_id, has_label, require_label, bad
        )
        if product is not None and images is not None:
            cell = _cell(record, images.column)
            product = _attach_image(path, product, cell, text_cols, images, bad, image_problem)
        if product is None:
            continue
        report.good += 1
        batch.append(product)
        if len(batch) >= batch_size:
            yield batch
            batch = []
    if text_cols is None and report.rows == 0 and fmt == "jsonl":
        raise DataError("the file has no records", file=path)
    if batch:
        yield batch


def _validate(
    path: Path,
    line: int,
    record: dict[str, Any],
    text_cols: list[str],
    columns: ColumnSpec,
    taxonomy: Taxonomy | None,
    has_id: bool,
    has_label: bool,
    require_label: bool,
    bad: Callable[[BadRow], None],
) -> Product | None:
    # the one record check files and the API share; a failure here is a bad row
    from .records import validate_record

    try:
        return validate_record(
            record,
            columns,
            text_columns=text_cols,
            taxonomy=taxonomy if has_label else None,
            require_label=require_label,
            source=str(path),
            line=line,
            default_id=None if has_id else f"row-{line}",
        )
    except DataError as exc:
        bad(BadRow(str(path), line, exc.field, exc.reason))
        return None


def _attach_image(
    path: Path,
    product: Product,
    cell: str,
    text_cols: list[str],
    images: _ImageChecker,
    bad: Callable[[BadRow], None],
    image_problem: Callable[[BadRow], None],
) -> Product | None:
    """The product with its checked image; a bad image is reported and dropped, and a row
    left with neither text nor image is a bad row."""
    image, problem = images(cell)
    if not product.text and image is None:
        reason = "empty text and no usable image"
        if problem:
            reason = f"{reason} ({problem})"
        bad(BadRow(str(path), product.line, "/".join(text_cols), reason))
        return None
    if problem is not None:
        image_problem(BadRow(str(path), product.line, images.column, problem, value=cell))
    return replace(product, image=image)


def read_labels(path: str | Path, columns: ColumnSpec = ColumnSpec()) -> list[str]:
    """Every non-empty raw label in a file, for building a taxonomy from its paths."""
    path = Path(path)
    labels: list[str] = []
    spec = columns.labels_only()
    for batch in read_products(
        path, spec, batch_size=4096, report=ReadReport(str(path)), require_label=True
    ):
        labels.extend(p.text for p in batch)
    return labels
