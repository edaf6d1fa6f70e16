"""Errors of the review store. Adapters map them: the CLI prints one line and exits 1; the
API answers problem+json with the status each class names (never 500)."""

from __future__ import annotations

from ..errors import TaxonomistError


class ReviewError(TaxonomistError):
    """Base of the review store's errors."""

    status = 400


class DatabaseError(ReviewError):
    """The review database URL is malformed, or the database cannot be reached or used."""

    status = 503


class ItemNotFound(ReviewError):
    status = 404


class DecisionConflict(ReviewError):
    """The item is decided, replaced, or reserved by someone else; or the caller's
    reservation has expired. Nothing was written."""

    status = 409


class InvalidDecision(ReviewError):
    """The decision names a category that is not in the taxonomy, or is malformed."""

    status = 422
