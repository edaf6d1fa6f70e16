"""Tables of the review store (SQLAlchemy 2 ORM). The schema itself is created and changed
only by the Alembic migrations in `migrations/`; these classes must match them.

`review_items` holds one row per queued prediction; re-queuing a product marks its open row
`superseded` and adds a new one, so at most one row per product is open (a partial unique
index guarantees it). `review_decisions` is the audit log: rows are only ever inserted (the
migration adds triggers that refuse UPDATE and DELETE).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

OPEN, DECIDED, SUPERSEDED = "open", "decided", "superseded"
ACCEPT, CORRECT, SKIP = "accept", "correct", "skip"


class Base(DeclarativeBase):
    pass


class ReviewItem(Base):
    __tablename__ = "review_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    product_id: Mapped[str] = mapped_column(String(512), index=True)
    title: Mapped[str] = mapped_column(Text, default="")
    text: Mapped[str] = mapped_column(Text, default="")  # what the model read
    image: Mapped[str | None] = mapped_column(Text, nullable=True)
    category_id: Mapped[str] = mapped_column(String(512))  # the model's best category
    category_path: Mapped[str] = mapped_column(Text, default="")
    confidence: Mapped[float] = mapped_column(Float)
    suggestions: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    model_name: Mapped[str] = mapped_column(String(256), default="")
    model_version: Mapped[str] = mapped_column(String(256), default="")
    reason: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=OPEN)
    reserved_by: Mapped[str | None] = mapped_column(String(256), nullable=True)
    reserved_until: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(256), nullable=True)
    final_category_id: Mapped[str | None] = mapped_column(String(512), nullable=True)


class Decision(Base):
    __tablename__ = "review_decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("review_items.id"), index=True)
    product_id: Mapped[str] = mapped_column(String(512), index=True)
    reviewer: Mapped[str] = mapped_column(String(256))
    action: Mapped[str] = mapped_column(String(16))
    before_category_id: Mapped[str] = mapped_column(String(512))
    after_category_id: Mapped[str | None] = mapped_column(String(512), nullable=True)
    after_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    model_name: Mapped[str] = mapped_column(String(256), default="")
    model_version: Mapped[str] = mapped_column(String(256), default="")
    bulk: Mapped[int] = mapped_column(Integer, default=0)
    idempotency_key: Mapped[str | None] = mapped_column(String(256), nullable=True, unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
