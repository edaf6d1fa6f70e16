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


def __getattr__(name: str):
    # `load_classifier` pulls in numpy and the model code: importing the package stays cheap
    if name in ("load_classifier", "Classifier", "ModelIdentity"):
        from . import classifier

        return getattr(classifier, name)
    raise AttributeError(f"module 'taxonomist' has no attribute {name!r}")


__version__ = "0.1.0"

__all__ = [
    "Category",
    "Classifier",
    "ModelIdentity",
    "ConfigError",
    "DataError",
    "ModelError",
    "NotTrainedError",
    "TaxonomistError",
    "Taxonomy",
    "TaxonomyError",
    "__version__",
    "load_classifier",
    "load_taxonomy",
]
