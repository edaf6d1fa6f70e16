"""Validate one product record: the single check behind files and the API.

A file row and an API request body are the same thing to a model: an id, some text, maybe a
label. Both go through `validate_record`, so a bad record gets the same message whichever
door it came in by ("file: line N: field 'title': empty text" from a file, "request: item 3:
field 'title': empty text" from the API).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import DataError, TaxonomistError
from ..taxonomy import Category, Taxonomy
from .readers import MAX_TEXT_CHARS, ColumnSpec, Product
from .readers import _cell as cell_text
from .readers import _has_bad_bytes as has_bad_bytes


def validate_record(
    record: Mapping[str, Any],
    columns: ColumnSpec = ColumnSpec(),
    *,
    text_columns: Sequence[str] | None = None,
    taxonomy: Taxonomy | None = None,
    require_label: bool = False,
    source: str = "record",
    line: int | None = None,
    default_id: str | None = None,
) -> Product:
    """One checked `Product` from a mapping of column -> value, or a `DataError` naming the
    field.

    Args:
        record: the row or request item.
        columns: which keys hold the id, text, label (and image: its cell is left for the
            caller to resolve, since files and requests fetch photos differently).
        text_columns: the text columns to join (those of a file's header); default: those of
            `columns.text_columns` present in `record`.
        taxonomy: resolves the label (full path, id or unambiguous name) when there is one.
        require_label: an empty or missing label is an error.
        source, line: where the record came from, for the message (a file and 1-based line,
            or "request" and the item's position).
        default_id: the id when the record has no id key (a file without an id column).

    Raises:
        DataError: bytes that are not UTF-8, a value that is not text, an empty id, empty text
            (unless the record may be classified from its photo), an unknown label.
    """

    def fail(field: str | None, reason: str) -> DataError:
        return DataError(reason, file=source, row=line, field=field)

    for column, value in record.items():
        if isinstance(value, str) and has_bad_bytes(value):
            raise fail(str(column), "bytes that are not valid UTF-8")
    if columns.id_column in record:
        product_id = cell_text(record, columns.id_column).strip()
        if not product_id:
            raise fail(columns.id_column, "empty id")
    elif default_id is not None:
        product_id = default_id
    else:
        raise fail(columns.id_column, "missing id")
    cols = (
        list(text_columns)
        if text_columns is not None
        else [c for c in columns.text_columns if c in record]
    )
    if not cols and not columns.image_column:
        raise fail(
            ",".join(columns.text_columns),
            f"none of the text columns {list(columns.text_columns)} is present",
        )
    parts = []
    for column in cols:
        value = record.get(column)
        if value is not None and not isinstance(value, str | int | float):
            raise fail(column, f"expected text, got {type(value).__name__}")
        parts.append(cell_text(record, column).strip())
    text = ". ".join(p for p in parts if p)
    if not text and not columns.image_column:
        raise fail("/".join(cols), "empty text")
    label: Category | None = None
    raw_label = cell_text(record, columns.label_column).strip()
    if raw_label and taxonomy is not None:
        try:
            label = taxonomy.resolve(raw_label, columns.label_separator)
        except TaxonomistError as exc:
            raise fail(columns.label_column, str(exc)) from None
    elif require_label and not raw_label:
        raise fail(columns.label_column, "empty label")
    return Product(product_id, text[:MAX_TEXT_CHARS], line or 0, label, None)
