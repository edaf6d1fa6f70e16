"""Domain errors. Every message says what was expected, what was found and how to fix it.

Nothing here imports a CLI or web framework: adapters map these to exit codes or HTTP statuses.
"""

from __future__ import annotations

import os


class TaxonomistError(Exception):
    """Base class of every error Taxonomist raises on purpose."""


class ConfigError(TaxonomistError):
    """An option or configuration value is invalid."""


class TaxonomyError(TaxonomistError):
    """A taxonomy is malformed or a category cannot be found in it."""


class ModelError(TaxonomistError):
    """A model cannot be loaded, built or used."""


class NotTrainedError(ModelError):
    """A model was asked to predict before it was fitted."""


class DataError(TaxonomistError):
    """Input data is malformed. Carries where: file, 1-based line/row and field when known."""

    def __init__(
        self,
        message: str,
        *,
        file: str | os.PathLike[str] | None = None,
        row: int | None = None,
        field: str | None = None,
    ) -> None:
        self.file = str(file) if file is not None else None
        self.row = row
        self.field = field
        self.reason = message
        super().__init__(self._format())

    def _format(self) -> str:
        where = []
        if self.file:
            where.append(self.file)
        if self.row is not None:
            where.append(f"line {self.row}")
        if self.field:
            where.append(f"field '{self.field}'")
        # same shape as a reported bad row: "file: line 3: field 'title': reason"
        return ": ".join([*where, self.reason])
