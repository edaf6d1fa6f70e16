"""Export reviewed labels (the latest accepted or corrected category per product)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from ..errors import DataError
from .queue import ReviewStore

COLUMNS = [
    "id",
    "category_id",
    "category",
    "title",
    "action",
    "reviewer",
    "decided_at",
    "model_version",
    "before_category_id",
]


def export_labels(store: ReviewStore, out: str | Path) -> int:
    """Write the reviewed labels to `out` (.csv or .parquet), atomically; return the count.

    The file is a labelled catalogue the `train` command reads (`id`, `category`, `title`).

    Raises:
        DataError: an unsupported extension or a missing output folder.
    """
    import pandas as pd

    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise DataError(
            f"unsupported export type '{suffix or '(none)'}'; use .csv or .parquet", file=out
        )
    if not out.parent.is_dir():
        raise DataError("output folder does not exist", file=out.parent)
    rows = store.reviewed_labels()
    frame = pd.DataFrame([{**r, "id": r["product_id"]} for r in rows], columns=COLUMNS).astype(
        {"id": str}
    )
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        if suffix == ".csv":
            frame.to_csv(tmp, index=False)
        else:
            frame.to_parquet(tmp, index=False)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return len(frame)
