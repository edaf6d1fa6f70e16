"""Write predictions as CSV, JSONL or Parquet, streaming, the format chosen by extension."""

from __future__ import annotations

import csv
import json
import os
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from ..predictions import ProductPrediction
from ..taxonomy import PATH_SEPARATOR
from .paths import check_output_file

WRITE_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
INPUT_PREFIX = "input_"  # a kept input column named like an output column gets this prefix


def prediction_columns(top_k: int, *, review: bool = False, llm: bool = False) -> list[str]:
    """Output columns: the best path, then `needs_review` and the full-depth suggestion of a
    backed-off row when a confidence threshold can flag rows (`review`), then the
    runners-up, then what an LLM re-ranking did (`llm`)."""
    cols = ["id", "category", "category_id", "confidence", "level_confidences"]
    if review:
        cols += ["needs_review", "suggested_category", "suggested_confidence"]
    for k in range(2, top_k + 1):
        cols += [f"category_{k}", f"category_id_{k}", f"confidence_{k}"]
    return [*cols, "llm_status"] if llm else cols


def kept_column_names(
    keep: Sequence[str], top_k: int, *, review: bool = False, llm: bool = False
) -> list[str]:
    """The output names of kept input columns: their own, or `input_<name>` where that
    would clash with a prediction column (a gold `category` column, say)."""
    taken = set(prediction_columns(top_k, review=review, llm=llm))
    return [f"{INPUT_PREFIX}{c}" if c in taken else c for c in keep]


def prediction_rows(
    preds: Iterable[ProductPrediction], top_k: int, *, review: bool = False, llm: bool = False
) -> list[dict[str, Any]]:
    """Flatten predictions to rows: best path, its confidences, then the runners-up."""
    rows = []
    for pred in preds:
        best = pred.candidates[0] if pred.candidates else None  # none: abstained
        row: dict[str, Any] = {
            "id": pred.product_id,
            "category": best.path_str if best else "",
            "category_id": best.category_id if best else "",
            "confidence": round(best.confidence, 6) if best else None,
            "level_confidences": [round(c, 6) for c in best.level_confidences] if best else [],
        }
        if review:
            row["needs_review"] = pred.needs_review
            # the full-depth guess behind a backed-off row; empty on every other row
            row["suggested_category"] = pred.suggested.path_str if pred.suggested else None
            row["suggested_confidence"] = (
                round(pred.suggested.confidence, 6) if pred.suggested else None
            )
        for k in range(2, top_k + 1):
            cand = pred.candidates[k - 1] if len(pred.candidates) >= k else None
            row[f"category_{k}"] = cand.path_str if cand else None
            row[f"category_id_{k}"] = cand.category_id if cand else None
            row[f"confidence_{k}"] = round(cand.confidence, 6) if cand else None
        if llm:
            row["llm_status"] = pred.llm_status
        rows.append(row)
    return rows


class PredictionWriter:
    """Context manager appending prediction rows to a file; written to a temp name first and
    moved into place on success, so a failed run never leaves a half-written output.

    Args:
        path: .csv, .jsonl/.ndjson or .parquet; checked at once (see `data.paths`).
        top_k: candidates per product (runners-up as `category_2`, `category_id_2`, ...).
        review: write the `needs_review` column (when a confidence threshold can set it).
        keep_columns: input columns copied to the output, after the prediction columns,
            from each product's `extra`; a name that clashes with a prediction column is
            written as `input_<name>`. CSV writes cells as text, JSONL as their JSON values,
            Parquet as strings (a column's type may differ from row to row in the input).
        inputs: the job's input files: the output may not be one of them.
        llm: write the `llm_status` column (an LLM re-ranked the doubtful rows).
    """

    def __init__(
        self,
        path: str | Path,
        top_k: int = 1,
        *,
        review: bool = False,
        keep_columns: Sequence[str] = (),
        inputs: Iterable[str | os.PathLike[str] | None] = (),
        llm: bool = False,
    ) -> None:
        self.path = check_output_file(path, WRITE_FORMATS, inputs=inputs, what="output")
        self.format = WRITE_FORMATS[self.path.suffix.lower()]
        self.top_k = top_k
        self.review = review
        self.llm = llm
        self.keep = list(keep_columns)
        self.kept_names = kept_column_names(self.keep, top_k, review=review, llm=llm)
        self.columns = prediction_columns(top_k, review=review, llm=llm) + self.kept_names
        self.count = 0
        # unique per writer: two writers in one process (threads, a server) never share it
        self._tmp = self.path.with_name(f".{self.path.name}.tmp-{uuid.uuid4().hex}")
        self._handle: Any = None
        self._csv: Any = None
        self._parquet: Any = None

    def __enter__(self) -> PredictionWriter:
        if self.format == "csv":
            self._handle = open(self._tmp, "w", encoding="utf-8", newline="")
            self._csv = csv.DictWriter(self._handle, fieldnames=self.columns)
            self._csv.writeheader()
        elif self.format == "jsonl":
            self._handle = open(self._tmp, "w", encoding="utf-8")
        return self

    def write(
        self,
        preds: Iterable[ProductPrediction],
        extras: Sequence[Mapping[str, Any] | None] | None = None,
    ) -> None:
        """Append predictions; `extras[i]` holds the kept input cells of the i-th product."""
        rows = prediction_rows(preds, self.top_k, review=self.review, llm=self.llm)
        if self.keep:
            if extras is None or len(extras) != len(rows):
                raise ValueError("kept columns need one extras mapping per prediction")
            for row, extra in zip(rows, extras):
                for column, name in zip(self.keep, self.kept_names):
                    row[name] = extra.get(column) if extra else None
        self.count += len(rows)
        if self.format == "csv":
            for row in rows:
                row = dict(row)
                row["level_confidences"] = PATH_SEPARATOR.join(
                    f"{c:.4f}" for c in row["level_confidences"]
                )
                for name in self.kept_names:
                    row[name] = _as_text(row[name])
                self._csv.writerow(row)
        elif self.format == "jsonl":
            for row in rows:
                self._handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        else:
            self._write_parquet(rows)

    def _write_parquet(self, rows: list[dict[str, Any]]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        fields = [
            pa.field("id", pa.string()),
            pa.field("category", pa.string()),
            pa.field("category_id", pa.string()),
            pa.field("confidence", pa.float64()),
            pa.field("level_confidences", pa.list_(pa.float64())),
        ]
        if self.review:
            fields += [
                pa.field("needs_review", pa.bool_()),
                pa.field("suggested_category", pa.string()),
                pa.field("suggested_confidence", pa.float64()),
            ]
        for k in range(2, self.top_k + 1):
            fields += [
                pa.field(f"category_{k}", pa.string()),
                pa.field(f"category_id_{k}", pa.string()),
                pa.field(f"confidence_{k}", pa.float64()),
            ]
        if self.llm:
            fields.append(pa.field("llm_status", pa.string()))
        fields += [pa.field(name, pa.string()) for name in self.kept_names]
        schema = pa.schema(fields)
        if self._parquet is None:
            self._parquet = pq.ParquetWriter(self._tmp, schema)
        if rows:
            for row in rows:
                for name in self.kept_names:
                    value = row[name]
                    row[name] = None if value is None else _as_text(value)
            self._parquet.write_table(pa.Table.from_pylist(rows, schema=schema))

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.format == "parquet":
            if self._parquet is None:
                self._write_parquet([])
            self._parquet.close()
        elif self._handle is not None:
            self._handle.close()
        if exc_type is None:
            os.replace(self._tmp, self.path)
        else:
            self._tmp.unlink(missing_ok=True)


def _as_text(value: Any) -> str:
    """A kept cell as text: strings as they are, other values (numbers, lists) as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value != value:  # NaN from Parquet
        return ""
    return json.dumps(value, ensure_ascii=False, default=str)
