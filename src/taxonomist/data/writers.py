"""Write predictions as CSV, JSONL or Parquet, streaming, the format chosen by extension."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

from ..errors import DataError
from ..predictions import ProductPrediction
from ..taxonomy import PATH_SEPARATOR

WRITE_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}


def prediction_columns(top_k: int, *, llm: bool = False) -> list[str]:
    cols = ["id", "category", "category_id", "confidence", "level_confidences", "needs_review"]
    for k in range(2, top_k + 1):
        cols += [f"category_{k}", f"confidence_{k}"]
    return [*cols, "llm_status"] if llm else cols


def prediction_rows(
    preds: Iterable[ProductPrediction], top_k: int, *, llm: bool = False
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
            "needs_review": pred.needs_review,
        }
        for k in range(2, top_k + 1):
            cand = pred.candidates[k - 1] if len(pred.candidates) >= k else None
            row[f"category_{k}"] = cand.path_str if cand else None
            row[f"confidence_{k}"] = round(cand.confidence, 6) if cand else None
        if llm:
            row["llm_status"] = pred.llm_status
        rows.append(row)
    return rows


class PredictionWriter:
    """Context manager appending prediction rows to a file; written to a temp name first and
    moved into place on success, so a failed run never leaves a half-written output."""

    def __init__(self, path: str | Path, top_k: int = 1, *, llm: bool = False) -> None:
        self.path = Path(path)
        self.format = WRITE_FORMATS.get(self.path.suffix.lower())
        if self.format is None:
            raise DataError(
                f"unsupported output type '{self.path.suffix or '(none)'}'; use one of "
                f"{', '.join(sorted(WRITE_FORMATS))}",
                file=self.path,
            )
        if not self.path.parent.exists():
            raise DataError("output folder does not exist", file=self.path.parent)
        self.columns = prediction_columns(top_k, llm=llm)
        self.top_k = top_k
        self.llm = llm
        self.count = 0
        self._tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
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

    def write(self, preds: Iterable[ProductPrediction]) -> None:
        rows = prediction_rows(preds, self.top_k, llm=self.llm)
        self.count += len(rows)
        if self.format == "csv":
            for row in rows:
                row = dict(row)
                row["level_confidences"] = PATH_SEPARATOR.join(
                    f"{c:.4f}" for c in row["level_confidences"]
                )
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
            pa.field("needs_review", pa.bool_()),
        ]
        for k in range(2, self.top_k + 1):
            fields += [
                pa.field(f"category_{k}", pa.string()),
                pa.field(f"confidence_{k}", pa.float64()),
            ]
        if self.llm:
            fields.append(pa.field("llm_status", pa.string()))
        schema = pa.schema(fields)
        if self._parquet is None:
            self._parquet = pq.ParquetWriter(self._tmp, schema)
        if rows:
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
