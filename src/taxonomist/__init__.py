"""Taxonomist: sort products into a category taxonomy with pretrained models.

Importing the package is cheap (no torch): heavy libraries load when a model needs them.

Example:
    >>> from taxonomist import load_taxonomy
    >>> load_taxonomy("shopify").by_path("Electronics > Video > Televisions").id
    'el-17-4'
"""

from .errors import (
    ConfigError,
    DataError,
    ModelError,
    NotTrainedError,
    TaxonomistError,
    TaxonomyError,
)
from .taxonomy import Category, Taxonomy
from .taxonomy_loaders import load_taxonomy

__version__ = "0.1.0"

__all__ = [
    "Category",
    "ConfigError",
    "DataError",
    "ModelError",
    "NotTrainedError",
    "TaxonomistError",
    "Taxonomy",
    "TaxonomyError",
    "__version__",
    "load_taxonomy",
]
