"""The review loop: a queue of doubtful predictions, reviewers' decisions in an append-only
audit log, and export of the reviewed labels. Needs the `review` extra (SQLAlchemy,
Alembic, psycopg)."""

from __future__ import annotations

from .errors import DatabaseError, DecisionConflict, InvalidDecision, ItemNotFound, ReviewError
from .queue import LOW_CONFIDENCE, Filters, QueueEntry, ReviewStore

__all__ = [
    "LOW_CONFIDENCE",
    "DatabaseError",
    "DecisionConflict",
    "Filters",
    "InvalidDecision",
    "ItemNotFound",
    "QueueEntry",
    "ReviewError",
    "ReviewStore",
]
