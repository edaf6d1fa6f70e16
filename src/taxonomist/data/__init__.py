"""Product records: reading and validating CSV/JSONL/Parquet, writing predictions."""

from .readers import BadRow, ColumnSpec, Product, ReadReport, read_products
from .writers import PredictionWriter, prediction_rows

__all__ = [
    "BadRow",
    "ColumnSpec",
    "PredictionWriter",
    "Product",
    "ReadReport",
    "prediction_rows",
    "read_products",
]
