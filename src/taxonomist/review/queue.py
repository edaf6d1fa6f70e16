"""The review queue: put doubtful predictions in, hand them to reviewers, record decisions.

Every state change is one database transaction guarded by a conditional UPDATE, so two
reviewers (or two server processes) can never both decide one item, and a decision is
either fully written (item closed + audit row) or not at all.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from ..taxonomy import Taxonomy
from .db import open_engine
from .errors import DatabaseError, DecisionConflict, InvalidDecision, ItemNotFound
from .schema import (
    ACCEPT,
    CORRECT,
    DECIDED,
    OPEN,
    SKIP,
    SUPERSEDED,
    Decision,
    ReviewItem,
)

logger = logging.getLogger(__name__)

LOW_CONFIDENCE = "low_confidence"
RESERVATION_SECONDS = 300
MAX_BULK = 10_000


def utcnow() -> datetime:
    # naive UTC: SQLite keeps no time zone, and both backends must compare the same way
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _free_for(reviewer: str, now: datetime) -> Any:
    """The SQL condition that an item is not held by another reviewer: unreserved, reserved
    by `reviewer`, or reserved until before `now`."""
    from sqlalchemy import or_

    return or_(
        ReviewItem.reserved_by.is_(None),
        ReviewItem.reserved_by == reviewer,
        ReviewItem.reserved_until < now,
    )


@dataclass(frozen=True)
class QueueEntry:
    """A prediction to review: the product, the model's ranked suggestions and why."""

    product_id: str
    suggestions: Sequence[dict[str, Any]]  # {"category_id", "path", "confidence"}, best first
    model_version: str
    reason: str = LOW_CONFIDENCE
    title: str = ""
    text: str = ""
    image: str | None = None
    model_name: str = ""


@dataclass(frozen=True)
class Filters:
    """Which queue items to list or bulk-accept (all given conditions must hold)."""

    category_id: str | None = None
    model_version: str | None = None
    reason: str | None = None
    min_confidence: float | None = None
    max_confidence: float | None = None
    status: str = OPEN


@dataclass(frozen=True)
class DecisionResult:
    decision_id: int
    item_id: int
    product_id: str
    action: str
    category_id: str | None
    reviewer: str
    replayed: bool = False  # the same idempotency key was already recorded


@dataclass
class BulkResult:
    accepted: list[int] = field(default_factory=list)
    skipped_reserved: int = 0


def item_dict(item: ReviewItem, priority: float | None = None) -> dict[str, Any]:
    return {
        "id": item.id,
        "product_id": item.product_id,
        "title": item.title,
        "text": item.text,
        "image": item.image,
        "category_id": item.category_id,
        "category_path": item.category_path,
        "confidence": item.confidence,
        "suggestions": list(item.suggestions or []),
        "model_name": item.model_name,
        "model_version": item.model_version,
        "reason": item.reason,
        "status": item.status,
        "priority": priority,
        "reserved_by": item.reserved_by,
        "reserved_until": _iso(item.reserved_until),
        "created_at": _iso(item.created_at),
        "decided_at": _iso(item.decided_at),
        "decided_by": item.decided_by,
        "final_category_id": item.final_category_id,
    }


def decision_dict(row: Decision) -> dict[str, Any]:
    return {
        "id": row.id,
        "item_id": row.item_id,
        "product_id": row.product_id,
        "reviewer": row.reviewer,
        "action": row.action,
        "before": row.before_category_id,
        "after": row.after_category_id,
        "after_path": row.after_path,
        "model_name": row.model_name,
        "model_version": row.model_version,
        "bulk": bool(row.bulk),
        "at": _iso(row.created_at),
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") + "Z" if value else None


class ReviewStore:
    """The queue and audit log in one database (SQLite file or PostgreSQL).

    Args:
        url: `sqlite:///PATH`, a file path, or `postgresql://...`; migrated on open.
        taxonomy: the categories a reviewer may choose (corrections are checked against it).

    Raises:
        DatabaseError: malformed URL, unreachable or unusable database.

    Example:
        >>> store = ReviewStore("models/review.sqlite", taxonomy)   # doctest: +SKIP
        >>> store.enqueue([QueueEntry("p1", [{"category_id": "a", ...}], "v1")])  # doctest: +SKIP
    """

    def __init__(self, url: str | Path, taxonomy: Taxonomy | None = None) -> None:
        self.engine = open_engine(url)
        self.taxonomy = taxonomy
        self.url = self.engine.url

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> ReviewStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- sessions ---------------------------------------------------------------------------
    def _session(self) -> Any:
        from sqlalchemy.orm import Session

        return Session(self.engine, expire_on_commit=False)

    def _run(self, work: Any) -> Any:
        """Run `work(session)` in one transaction; database failures become DatabaseError."""
        from sqlalchemy.exc import DBAPIError, IntegrityError

        try:
            with self._session() as session, session.begin():
                return work(session)
        except IntegrityError:
            raise
        except DBAPIError as exc:
            original = getattr(exc, "orig", None) or exc
            reason = str(original).strip().splitlines()[0] if str(original).strip() else ""
            raise DatabaseError(
                f"review database {self.url.render_as_string(hide_password=True)}: "
                f"{reason or type(original).__name__}"
            ) from None

    # -- queueing ---------------------------------------------------------------------------
    def enqueue(self, entries: Iterable[QueueEntry]) -> int:
        """Queue predictions; a product's open item is replaced (marked superseded).

        Returns:
            how many items were queued.
        """
        entries = list(entries)
        if not entries:
            return 0
        from sqlalchemy import update

        def work(session: Any) -> int:
            now = utcnow()
            ids = [e.product_id for e in entries]
            for start in range(0, len(ids), 500):
                session.execute(
                    update(ReviewItem)
                    .where(ReviewItem.product_id.in_(ids[start : start + 500]))
                    .where(ReviewItem.status == OPEN)
                    .values(status=SUPERSEDED, reserved_by=None, reserved_until=None)
                )
            latest: dict[str, QueueEntry] = {e.product_id: e for e in entries}
            for entry in latest.values():
                if not entry.suggestions:
                    raise InvalidDecision(f"product {entry.product_id!r}: no suggestions to queue")
                best = entry.suggestions[0]
                session.add(
                    ReviewItem(
                        product_id=entry.product_id,
                        title=entry.title,
                        text=entry.text or entry.title,
                        image=entry.image,
                        category_id=str(best["category_id"]),
                        category_path=str(best.get("path", "")),
                        confidence=float(best["confidence"]),
                        suggestions=[dict(s) for s in entry.suggestions],
                        model_name=entry.model_name,
                        model_version=entry.model_version,
                        reason=entry.reason,
                        status=OPEN,
                        created_at=now,
                    )
                )
            return len(latest)

        from sqlalchemy.exc import IntegrityError

        for attempt in range(3):
            try:
                return self._run(work)
            except IntegrityError:
                # another writer queued one of these products between our UPDATE and INSERT
                # (the one-open-item index refused the second row): do it again
                if attempt == 2:
                    raise DatabaseError(
                        "could not queue the products: other writers keep queueing the same "
                        "ones; try again"
                    ) from None
        return 0

    # -- reading ----------------------------------------------------------------------------
    def _priority_query(self, filters: Filters) -> Any:
        """Items with their priority: uncertainty x open items predicted into the category."""
        from sqlalchemy import func, select

        counts = (
            select(ReviewItem.category_id, func.count().label("n"))
            .where(ReviewItem.status == OPEN)
            .group_by(ReviewItem.category_id)
            .subquery()
        )
        priority = ((1.0 - ReviewItem.confidence) * func.coalesce(counts.c.n, 1)).label("priority")
        query = select(ReviewItem, priority).outerjoin(
            counts, counts.c.category_id == ReviewItem.category_id
        )
        if filters.status != "any":
            query = query.where(ReviewItem.status == filters.status)
        if filters.category_id:
            query = query.where(ReviewItem.category_id == filters.category_id)
        if filters.model_version:
            query = query.where(ReviewItem.model_version == filters.model_version)
        if filters.reason:
            query = query.where(ReviewItem.reason == filters.reason)
        if filters.min_confidence is not None:
            query = query.where(ReviewItem.confidence >= filters.min_confidence)
        if filters.max_confidence is not None:
            query = query.where(ReviewItem.confidence <= filters.max_confidence)
        return query.order_by(priority.desc(), ReviewItem.id)

    def list_items(
        self, filters: Filters = Filters(), *, limit: int = 50, offset: int = 0
    ) -> list[dict[str, Any]]:
        """Queue items in priority order (highest first)."""
        query = self._priority_query(filters).limit(limit).offset(offset)
        return self._run(
            lambda s: [item_dict(item, float(p)) for item, p in s.execute(query).all()]
        )

    def count(self, filters: Filters = Filters()) -> int:
        from sqlalchemy import func, select

        sub = self._priority_query(filters).order_by(None).subquery()
        return int(self._run(lambda s: s.execute(select(func.count()).select_from(sub)).scalar()))

    def get(self, item_id: int) -> dict[str, Any]:
        def work(session: Any) -> dict[str, Any]:
            return item_dict(self._item(session, item_id))

        return self._run(work)

    def _item(self, session: Any, item_id: int) -> ReviewItem:
        item = session.get(ReviewItem, item_id)
        if item is None:
            raise ItemNotFound(f"no review item {item_id}")
        return item

    def decisions(
        self, *, product_id: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[dict[str, Any]]:
        """The audit log, oldest first."""
        from sqlalchemy import select

        query = select(Decision).order_by(Decision.id)
        if product_id is not None:
            query = query.where(Decision.product_id == product_id)
        query = query.limit(limit).offset(offset)
        return self._run(lambda s: [decision_dict(d) for d in s.scalars(query).all()])

    # -- reservations -----------------------------------------------------------------------
    def reserve(
        self, item_id: int, reviewer: str, seconds: int = RESERVATION_SECONDS
    ) -> dict[str, Any]:
        """Reserve an open item to `reviewer` for `seconds` (renewing their own reservation).

        Raises:
            ItemNotFound, DecisionConflict: decided, replaced, or reserved by someone else.
        """
        from sqlalchemy import update

        reviewer = _check_reviewer(reviewer)

        def work(session: Any) -> dict[str, Any]:
            now = utcnow()
            result = session.execute(
                update(ReviewItem)
                .where(ReviewItem.id == item_id, ReviewItem.status == OPEN)
                .where(_free_for(reviewer, now))
                .values(reserved_by=reviewer, reserved_until=now + timedelta(seconds=seconds))
            )
            if result.rowcount != 1:
                self._explain_conflict(session, item_id, reviewer, now)
            return item_dict(self._item(session, item_id))

        return self._run(work)

    def next_item(
        self, reviewer: str, filters: Filters = Filters(), seconds: int = RESERVATION_SECONDS
    ) -> dict[str, Any] | None:
        """Reserve and return the highest-priority open item free for `reviewer` (not held
        by another, not skipped by them); None when there is none."""
        from sqlalchemy import and_, exists, select

        reviewer = _check_reviewer(reviewer)
        for _ in range(20):  # another reviewer may take the candidate between read and write
            now = utcnow()
            skipped = exists(
                select(Decision.id).where(
                    and_(
                        Decision.item_id == ReviewItem.id,
                        Decision.reviewer == reviewer,
                        Decision.action == SKIP,
                    )
                )
            )
            query = (
                self._priority_query(filters)
                .where(_free_for(reviewer, now))
                .where(~skipped)
                .limit(1)
            )
            row = self._run(lambda s, q=query: s.execute(q).first())
            if row is None:
                return None
            try:
                item = self.reserve(row[0].id, reviewer, seconds)
            except DecisionConflict:
                continue
            item["priority"] = float(row[1])
            return item
        return None

    def release(self, item_id: int, reviewer: str) -> None:
        from sqlalchemy import update

        def work(session: Any) -> None:
            session.execute(
                update(ReviewItem)
                .where(ReviewItem.id == item_id, ReviewItem.reserved_by == reviewer)
                .values(reserved_by=None, reserved_until=None)
            )

        self._run(work)

    def _explain_conflict(
        self, session: Any, item_id: int, reviewer: str, now: datetime, *, deciding: bool = False
    ) -> None:
        item = self._item(session, item_id)
        if item.status == DECIDED:
            raise DecisionConflict(
                f"item {item_id} (product {item.product_id}) was already decided by "
                f"{item.decided_by} at {_iso(item.decided_at)}; nothing was changed"
            )
        if item.status == SUPERSEDED:
            raise DecisionConflict(
                f"item {item_id} (product {item.product_id}) was replaced by a newer "
                "prediction; load the queue again"
            )
        if item.reserved_by and item.reserved_by != reviewer:
            raise DecisionConflict(
                f"item {item_id} is reserved by {item.reserved_by} until "
                f"{_iso(item.reserved_until)}"
            )
        if deciding and item.reserved_by == reviewer and item.reserved_until is not None:
            raise DecisionConflict(
                f"your reservation of item {item_id} expired at {_iso(item.reserved_until)}; "
                "reserve it again and re-check it before deciding"
            )
        raise DecisionConflict(f"item {item_id} cannot be changed now; load it again")

    # -- decisions --------------------------------------------------------------------------
    def decide(
        self,
        item_id: int,
        reviewer: str,
        action: str,
        category_id: str | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> DecisionResult:
        """Record a reviewer's decision on an item, once.

        `accept` files the model's best category (or `category_id`, one of its
        suggestions); `correct` files `category_id`, any category of the taxonomy; `skip`
        leaves the item open for others and releases it. The caller must hold the item's
        reservation, or the item must be unreserved. The same `idempotency_key` sent again
        returns the first result (`replayed`) and writes nothing.

        Raises:
            InvalidDecision: unknown action or category id.
            ItemNotFound: no such item.
            DecisionConflict: decided or replaced already, reserved by someone else, or the
                caller's reservation expired.
        """
        from sqlalchemy import and_, or_, update
        from sqlalchemy.exc import IntegrityError

        reviewer = _check_reviewer(reviewer)
        if action not in (ACCEPT, CORRECT, SKIP):
            raise InvalidDecision(f"unknown action {action!r}; use accept, correct or skip")
        if action == CORRECT and not category_id:
            raise InvalidDecision("a correction needs a category_id")
        if category_id is not None and action != SKIP:
            self._check_category(category_id)
        if idempotency_key is not None:
            if not idempotency_key or len(idempotency_key) > 200:
                raise InvalidDecision("idempotency key must be 1-200 characters")
            earlier = self._replay(idempotency_key, item_id, reviewer)
            if earlier is not None:
                return earlier

        def work(session: Any) -> DecisionResult:
            now = utcnow()
            item = self._item(session, item_id)
            after = category_id if category_id else item.category_id
            kind = action
            if action == ACCEPT and after != item.category_id:
                suggested = {str(s.get("category_id")) for s in item.suggestions or []}
                if after not in suggested:
                    raise InvalidDecision(
                        f"category {after!r} is not among item {item_id}'s suggestions; "
                        "send it as a correction"
                    )
                kind = CORRECT
            elif action == CORRECT and after == item.category_id:
                kind = ACCEPT
            held = or_(
                ReviewItem.reserved_by.is_(None),
                and_(ReviewItem.reserved_by == reviewer, ReviewItem.reserved_until >= now),
                and_(ReviewItem.reserved_by != reviewer, ReviewItem.reserved_until < now),
            )
            values: dict[str, Any] = {"reserved_by": None, "reserved_until": None}
            if kind != SKIP:
                values.update(
                    status=DECIDED, decided_at=now, decided_by=reviewer, final_category_id=after
                )
            result = session.execute(
                update(ReviewItem)
                .where(ReviewItem.id == item_id, ReviewItem.status == OPEN)
                .where(held)
                .values(**values)
            )
            if result.rowcount != 1:
                self._explain_conflict(session, item_id, reviewer, now, deciding=True)
            row = Decision(
                item_id=item_id,
                product_id=item.product_id,
                reviewer=reviewer,
                action=kind,
                before_category_id=item.category_id,
                after_category_id=None if kind == SKIP else after,
                after_path=None if kind == SKIP else self._path(after, item),
                model_name=item.model_name,
                model_version=item.model_version,
                bulk=0,
                idempotency_key=idempotency_key,
                created_at=now,
            )
            session.add(row)
            session.flush()
            return DecisionResult(
                row.id, item_id, item.product_id, kind, row.after_category_id, reviewer
            )

        try:
            return self._run(work)
        except IntegrityError:
            # the same key raced in from a retry that reached the database first
            if idempotency_key is not None:
                earlier = self._replay(idempotency_key, item_id, reviewer)
                if earlier is not None:
                    return earlier
            raise DatabaseError("review database refused the decision (integrity)") from None

    def _replay(self, key: str, item_id: int, reviewer: str) -> DecisionResult | None:
        from sqlalchemy import select

        def work(session: Any) -> DecisionResult | None:
            row = session.scalars(select(Decision).where(Decision.idempotency_key == key)).first()
            if row is None:
                return None
            if row.item_id != item_id or row.reviewer != reviewer:
                raise DecisionConflict(
                    f"idempotency key {key!r} was already used for item {row.item_id} by "
                    f"{row.reviewer}; use a new key for a new decision"
                )
            return DecisionResult(
                row.id,
                row.item_id,
                row.product_id,
                row.action,
                row.after_category_id,
                row.reviewer,
                replayed=True,
            )

        return self._run(work)

    def bulk_accept(
        self,
        filters: Filters,
        reviewer: str,
        *,
        idempotency_key: str | None = None,
        limit: int = MAX_BULK,
    ) -> BulkResult:
        """Accept the model's best category for every open item matching `filters` that
        no one else holds, in one transaction. Items reserved by another reviewer are left
        alone (and counted). With `idempotency_key`, sending the same call again accepts
        nothing twice."""
        from sqlalchemy import and_, select, update

        reviewer = _check_reviewer(reviewer)
        if filters.status != OPEN:
            raise InvalidDecision("bulk accept works on open items only")
        if not 1 <= limit <= MAX_BULK:
            raise InvalidDecision(f"bulk limit must be 1-{MAX_BULK}, got {limit}")

        def work(session: Any) -> BulkResult:
            now = utcnow()
            free = _free_for(reviewer, now)
            rows = session.execute(self._priority_query(filters).limit(limit)).all()
            out = BulkResult()
            for item, _priority in rows:
                key = f"{idempotency_key}:{item.id}" if idempotency_key else None
                if (
                    key is not None
                    and session.scalars(
                        select(Decision.id).where(Decision.idempotency_key == key)
                    ).first()
                ):
                    continue
                result = session.execute(
                    update(ReviewItem)
                    .where(and_(ReviewItem.id == item.id, ReviewItem.status == OPEN, free))
                    .values(
                        status=DECIDED,
                        decided_at=now,
                        decided_by=reviewer,
                        final_category_id=item.category_id,
                        reserved_by=None,
                        reserved_until=None,
                    )
                )
                if result.rowcount != 1:
                    out.skipped_reserved += 1
                    continue
                session.add(
                    Decision(
                        item_id=item.id,
                        product_id=item.product_id,
                        reviewer=reviewer,
                        action=ACCEPT,
                        before_category_id=item.category_id,
                        after_category_id=item.category_id,
                        after_path=item.category_path,
                        model_name=item.model_name,
                        model_version=item.model_version,
                        bulk=1,
                        idempotency_key=key,
                        created_at=now,
                    )
                )
                out.accepted.append(item.id)
            return out

        return self._run(work)

    def _check_category(self, category_id: str) -> None:
        if self.taxonomy is not None and category_id not in self.taxonomy:
            raise InvalidDecision(
                f"unknown category id {category_id!r}: not a category of taxonomy "
                f"'{self.taxonomy.name}'; search the taxonomy for a valid id"
            )

    def _path(self, category_id: str, item: ReviewItem) -> str:
        if self.taxonomy is not None and category_id in self.taxonomy:
            return self.taxonomy.get(category_id).path_str
        for suggestion in item.suggestions or []:
            if str(suggestion.get("category_id")) == category_id:
                return str(suggestion.get("path", ""))
        return ""

    # -- results ----------------------------------------------------------------------------
    def reviewed_labels(self) -> list[dict[str, Any]]:
        """The latest accepted or corrected label per product, with the product's text.

        Rows: product_id, text, title, category_id, category, action, reviewer, decided_at,
        model_version, before_category_id.
        """
        from sqlalchemy import select

        query = (
            select(Decision, ReviewItem)
            .join(ReviewItem, ReviewItem.id == Decision.item_id)
            .where(Decision.action.in_((ACCEPT, CORRECT)))
            .order_by(Decision.id)
        )

        def work(session: Any) -> list[dict[str, Any]]:
            latest: dict[str, dict[str, Any]] = {}
            for decision, item in session.execute(query).all():
                latest[decision.product_id] = {
                    "product_id": decision.product_id,
                    "text": item.text,
                    "title": item.title,
                    "category_id": decision.after_category_id,
                    "category": decision.after_path or "",
                    "action": decision.action,
                    "reviewer": decision.reviewer,
                    "decided_at": _iso(decision.created_at),
                    "model_version": decision.model_version,
                    "before_category_id": decision.before_category_id,
                }
            return list(latest.values())

        return self._run(work)

    def integrity_problems(self) -> list[str]:
        """Database-level consistency check (`PRAGMA integrity_check` on SQLite)."""
        if self.engine.dialect.name != "sqlite":
            return []
        with self.engine.connect() as connection:
            rows = [r[0] for r in connection.exec_driver_sql("PRAGMA integrity_check")]
        return [] if rows == ["ok"] else rows


def _check_reviewer(reviewer: str) -> str:
    reviewer = (reviewer or "").strip()
    if not reviewer or len(reviewer) > 200:
        raise InvalidDecision("a reviewer name (1-200 characters) is required")
    return reviewer
