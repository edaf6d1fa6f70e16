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

import codecs
import csv
import json
import logging
import re
import sys
from collections.abc import Callable, Iterator, Mapping
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
DELIMITERS = (",", ";", "\t", "|")  # what a .csv is sniffed for, in order of preference
DELIMITER_NAMES = {"comma": ",", "semicolon": ";", "tab": "\t", "\\t": "\t", "pipe": "|"}
MAX_DUPLICATE_EXAMPLES = 5
KEEP_ALL = "all"

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


@dataclass(frozen=True)
class ColumnSpec:
    """Which columns hold what, and how a file's cells are read.

    Of `text_columns`, those present in the file are used. `delimiter` is a CSV's field
    separator (None: sniffed from the header line among `, ; tab |`; a .tsv is tab).
    `encoding` is the text files' encoding (any Python codec name: cp1252, latin-1, gb18030).
    `keep_columns` are input columns passed through to the output, or "all".
    """

    id_column: str = "id"
    text_columns: tuple[str, ...] = ("title", "description")
    image_column: str | None = None
    label_column: str = "category"
    label_separator: str = PATH_SEPARATOR
    delimiter: str | None = None
    encoding: str = "utf-8"
    keep_columns: tuple[str, ...] | str = ()

    def labels_only(self) -> ColumnSpec:
        """The same columns, reading the label column as the text: for gold-label files,
        where products need an id and a label but no title."""
        return replace(self, text_columns=(self.label_column,), image_column=None)

    def __post_init__(self) -> None:
        if not self.text_columns or any(not c.strip() for c in self.text_columns):
            raise ConfigError(f"text columns must be non-empty names, got {self.text_columns!r}")
        if not self.label_separator.strip():
            raise ConfigError("label separator must contain a visible character")
        if self.delimiter is not None:
            delimiter = DELIMITER_NAMES.get(self.delimiter.lower(), self.delimiter)
            if len(delimiter) != 1 or delimiter in '"\r\n':
                raise ConfigError(
                    f"delimiter must be one character (or comma, semicolon, tab, pipe), "
                    f"got {self.delimiter!r}"
                )
            object.__setattr__(self, "delimiter", delimiter)
        try:
            object.__setattr__(self, "encoding", codecs.lookup(self.encoding).name)
        except LookupError:
            raise ConfigError(
                f"unknown encoding {self.encoding!r}; try utf-8, cp1252, latin-1 or gb18030"
            ) from None
        if isinstance(self.keep_columns, str) and self.keep_columns != KEEP_ALL:
            raise ConfigError(f"keep columns: a tuple of names or '{KEEP_ALL}'")
        if not isinstance(self.keep_columns, str) and any(not c.strip() for c in self.keep_columns):
            raise ConfigError(f"keep columns must be non-empty names, got {self.keep_columns!r}")


@dataclass(frozen=True)
class Product:
    """One validated product. `line` is where it was read (1-based), for messages."""

    id: str
    text: str
    line: int
    label: Category | None = None
    image: str | None = None
    extra: dict[str, Any] | None = None  # kept input cells (ColumnSpec.keep_columns)


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
    duplicate_ids: int = 0  # rows whose id an earlier row already had
    duplicate_examples: list[tuple[str, int, int]] = field(default_factory=list)  # id, line, 1st
    undecodable_rows: int = 0
    encoding_hint: str | None = None  # set when most rows failed to decode

    def duplicates_message(self) -> str | None:
        """One line about repeated ids (count and first examples), or None."""
        if not self.duplicate_ids:
            return None
        shown = ", ".join(
            f"'{pid}' (line {line}, first at line {first})"
            for pid, line, first in self.duplicate_examples
        )
        more = self.duplicate_ids - len(self.duplicate_examples)
        return f"{self.file}: {self.duplicate_ids} row(s) repeat an earlier row's id: {shown}" + (
            f" and {more} more" if more > 0 else ""
        )


def detect_format(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DataError(
            f"unsupported file type '{path.suffix or '(none)'}'; use one of "
            f"{', '.join(sorted(FORMATS))}",
            file=path,
        )
    return fmt


def _data_file(path: str | Path) -> tuple[Path, str]:
    """`path` and its format; a `DataError` naming it when it is missing, a directory, or
    of an unsupported type."""
    path = Path(path)
    if not path.exists():
        raise DataError("file not found", file=path)
    if path.is_dir():
        raise DataError("is a directory, expected a data file", file=path)
    return path, detect_format(path)


def sniff_delimiter(line: str) -> str:
    """The likeliest field separator of a CSV header line: the one of `, ; tab |` found most
    often outside quotes (a comma when none is)."""
    counts = dict.fromkeys(DELIMITERS, 0)
    quoted = False
    for ch in line:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in counts:
            counts[ch] += 1
    best = max(DELIMITERS, key=lambda d: counts[d])  # max keeps the first of a tie
    return best if counts[best] else ","


def _open_text(path: Path, encoding: str, **kw: Any) -> Any:
    # surrogateescape keeps undecodable bytes as lone surrogates, so a bad byte is caught
    # on its row instead of aborting the whole file (and can be given back for a guess)
    name = "utf-8-sig" if encoding == "utf-8" else encoding
    return open(path, encoding=name, errors="surrogateescape", **kw)


def guess_encoding(raw: bytes) -> str:
    """A legacy encoding that decodes `raw` (bytes that were not UTF-8) plausibly: GB18030
    when they read as Chinese, else Windows-1252 when they decode, else Latin-1."""
    # Chinese in GB18030 comes in runs of two-byte characters, both bytes high; accented
    # Latin letters are mostly one high byte between ASCII ones (which GB18030 would also
    # "decode", pairing the high byte with the next letter)
    runs = [len(run) for run in re.findall(rb"[\x80-\xff]+", raw)]
    if runs and sum(n % 2 == 0 for n in runs) >= 0.8 * len(runs):
        try:
            text = raw.decode("gb18030")
            wide = [ch for ch in text if ord(ch) > 0x7F]
            if wide and sum("\u4e00" <= ch <= "\u9fff" for ch in wide) >= 0.8 * len(wide):
                return "gb18030"
        except UnicodeDecodeError:
            pass
    try:
        raw.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:
        return "latin-1"


def _raw_bytes(texts: Iterator[str] | list[str]) -> bytes:
    return b" ".join(t.encode("utf-8", "surrogateescape") for t in texts)


def _codec_name(encoding: str) -> str:
    return "UTF-8" if encoding == "utf-8" else encoding


def _codec(columns: ColumnSpec) -> str:
    return _codec_name(columns.encoding)


def encoding_hint(raw: bytes, encoding: str) -> str:
    """What to tell a user whose rows did not decode: an encoding to try."""
    if encoding != "utf-8":
        return f"the file is not {encoding}; name its encoding with --encoding"
    guess = guess_encoding(raw)
    return f"the file looks {guess}-encoded: try --encoding {guess}"


def _iter_csv(
    path: Path, delimiter: str | None, encoding: str
) -> Iterator[tuple[int, dict[str, Any] | BadRow]]:
    with _open_text(path, encoding, newline="") as handle:
        if delimiter is None:
            first = handle.readline()
            handle.seek(0)
            delimiter = sniff_delimiter(first)
        reader = csv.reader(handle, delimiter=delimiter)
        try:
            header = next(reader)
        except StopIteration:
            raise DataError("the file is empty (no header line)", file=path) from None
        except csv.Error as exc:
            raise DataError(f"cannot parse the header: {exc}", file=path, row=1) from None
        bad_header = [h for h in header if _has_bad_bytes(h)]
        if bad_header:
            raise DataError(
                f"header has bytes that are not valid {_codec_name(encoding)}; "
                + encoding_hint(_raw_bytes(bad_header), encoding),
                file=path,
                row=1,
            )
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


def _iter_jsonl(path: Path, encoding: str) -> Iterator[tuple[int, dict[str, Any] | BadRow]]:
    with _open_text(path, encoding) as handle:
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


UNDECODABLE = "undecodable"  # a bad row's reason until read_products words it


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


# surrogateescape turns each undecodable byte into one of these lone surrogates; a regex finds
# them many times faster than a loop over characters (this runs on every cell of every row)
_BAD_BYTES = re.compile("[\udc80-\udcff]")


def _has_bad_bytes(text: str) -> bool:
    return _BAD_BYTES.search(text) is not None


def _cell(record: Mapping[str, Any], column: str) -> str:
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
    check_ids: bool = True,
    quiet: bool = False,
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
        check_ids: report rows whose id repeats an earlier row's (counted in `report`, one
            warning at the end; `strict` makes the first an error). The row is still yielded:
            what a repeat means is the caller's decision (evaluate counts the first only).
        quiet: no end-of-file warnings (undecodable rows, repeated ids) in the log, for a
            pass over a file that another pass reports; `report` is still filled.

    A file with a header and no data rows (or an empty JSONL file) yields nothing: callers
    decide whether that is an error. When most rows fail to decode, `report.encoding_hint`
    names an encoding to try (and a warning says so).

    With `columns.image_column`, each cell is resolved (relative paths from the data file's
    folder) and fully decoded once; `Product.image` is the absolute path of a usable image.
    A row with empty text but a usable image is an image-only product with text "".

    Raises:
        DataError: missing file, unsupported type, missing columns, unreadable file, or any
            bad row when `strict`.
    """
    path, fmt = _data_file(path)
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
    rows = _iter_rows(path, fmt, columns, batch_size)

    text_cols: list[str] | None = None
    keep: list[str] = []
    has_id = has_label = False
    seen_header = fmt == "jsonl"
    batch: list[Product] = []
    first_line: dict[int, int] = {}  # hash(id) -> first line; 64-bit hashes keep it small
    undecodable_sample: list[str] = []

    def bad(row: BadRow) -> None:
        if row.reason == UNDECODABLE:
            report.undecodable_rows += 1
            if len(undecodable_sample) < 200 and row.value is not None:
                undecodable_sample.append(row.value)
            row = replace(row, reason=f"bytes that are not valid {_codec(columns)}", value=None)
        if strict:
            reason = row.reason
            if report.undecodable_rows and undecodable_sample:
                reason += "; " + encoding_hint(_raw_bytes(undecodable_sample), columns.encoding)
            raise DataError(reason, file=row.file, row=row.line, field=row.field)
        report.bad_rows.append(row)
        if on_bad_row:
            on_bad_row(row)

    def image_problem(row: BadRow) -> None:
        report.image_problems.append(row)
        if on_image_problem:
            on_image_problem(row)

    def resolve_columns(names: list[str]) -> None:
        nonlocal text_cols, has_id, has_label, keep
        report.columns = list(names)
        keep = resolve_keep_columns(columns, names, path)
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
        if check_ids and has_id:
            key = hash(product.id)
            first = first_line.setdefault(key, line)
            if first != line:
                report.duplicate_ids += 1
                if strict:
                    raise DataError(
                        f"duplicate id '{product.id}' (first at line {first}); ids must be unique",
                        file=path,
                        row=line,
                        field=columns.id_column,
                    )
                if len(report.duplicate_examples) < MAX_DUPLICATE_EXAMPLES:
                    report.duplicate_examples.append((product.id, line, first))
        if keep:
            product = replace(product, extra={c: record.get(c) for c in keep})
        report.good += 1
        batch.append(product)
        if len(batch) >= batch_size:
            yield batch
            batch = []
    if report.undecodable_rows and report.undecodable_rows * 2 >= report.rows:
        report.encoding_hint = encoding_hint(_raw_bytes(undecodable_sample), columns.encoding)
    if report.encoding_hint and not quiet:
        logger.warning(
            "%s: %d of %d rows are not valid %s; %s",
            path,
            report.undecodable_rows,
            report.rows,
            _codec(columns),
            report.encoding_hint,
        )
    if report.duplicate_ids and not quiet:
        logger.warning("%s; --strict makes this an error", report.duplicates_message())
    if batch:
        yield batch


def _iter_rows(
    path: Path, fmt: str, columns: ColumnSpec, batch_size: int
) -> Iterator[tuple[int, dict[str, Any] | BadRow]]:
    if fmt == "parquet":
        return _iter_parquet(path, batch_size)
    if fmt == "jsonl":
        return _iter_jsonl(path, columns.encoding)
    delimiter = columns.delimiter or ("\t" if fmt == "tsv" else None)
    return _iter_csv(path, delimiter, columns.encoding)


def iter_records(
    path: str | Path, columns: ColumnSpec = ColumnSpec(), *, batch_size: int = 1024
) -> Iterator[tuple[int, dict[str, Any] | BadRow]]:
    """Raw records of a data file with their line numbers (Parquet: row numbers), read with
    the same delimiter sniffing and encoding as `read_products` but not validated. CSV and
    Parquet start with `(line, {"__header__": names})`; malformed lines come as `BadRow`s
    and undecodable bytes as lone surrogates (see `has_bad_bytes`)."""
    path, fmt = _data_file(path)
    return _iter_rows(path, fmt, columns, batch_size)


def has_bad_bytes(text: str) -> bool:
    """True when `text` holds bytes its file's encoding could not decode."""
    return _has_bad_bytes(text)


def resolve_keep_columns(columns: ColumnSpec, names: list[str], path: Path) -> list[str]:
    """The input columns to pass through: all of `names`, or the ones asked for (each must
    exist)."""
    if columns.keep_columns == KEEP_ALL:
        return list(names)
    missing = [c for c in columns.keep_columns if c not in names]
    if missing:
        raise DataError(
            f"--keep-columns: no column {', '.join(map(repr, missing))}; found columns {names}",
            file=path,
            field=",".join(missing),
        )
    return list(columns.keep_columns)


def peek_file(path: str | Path, columns: ColumnSpec = ColumnSpec()) -> tuple[list[str], bool]:
    """A data file's column names and whether it has at least one data row, read cheaply
    (a JSONL file's names are its first record's keys). Missing or unsupported files raise
    `DataError` at once, before a job loads any model."""
    path, fmt = _data_file(path)
    names: list[str] = []
    rows = _iter_rows(path, fmt, columns, 1)
    try:
        for _, record in rows:
            if isinstance(record, dict) and "__header__" in record:
                names = list(record["__header__"])
                continue
            if isinstance(record, dict) and not names:
                names = list(record)
            return names, True
    finally:
        rows.close()  # type: ignore[attr-defined]
    return names, False


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
    try:
        return _record_validator()(
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
        value = record.get(exc.field) if exc.field is not None else None
        if isinstance(value, str) and _has_bad_bytes(value):
            # only a file has an encoding: read_products words this and keeps the raw
            # cell to guess the encoding to suggest
            bad(BadRow(str(path), line, exc.field, UNDECODABLE, value=value))
        else:
            bad(BadRow(str(path), line, exc.field, exc.reason))
        return None


_VALIDATE_RECORD: Callable[..., Product] | None = None


def _record_validator() -> Callable[..., Product]:
    # records imports this module, so it is looked up once here rather than imported at the
    # top (an import statement per row costs more than the check itself)
    global _VALIDATE_RECORD
    if _VALIDATE_RECORD is None:
        from .records import validate_record

        _VALIDATE_RECORD = validate_record
    return _VALIDATE_RECORD


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
        path,
        spec,
        batch_size=4096,
        report=ReadReport(str(path)),
        require_label=True,
        check_ids=False,
        quiet=True,
    ):
        labels.extend(p.text for p in batch)
    return labels
