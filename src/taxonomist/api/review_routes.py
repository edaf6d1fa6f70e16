"""Reviewer API (`review` scope) and the retrain call (`admin` scope).

The routes are built by `review_router(...)` around dependencies the app factory supplies:
who is calling (the API key's name is the reviewer of record), the review store, and
optionally the model store for retraining. Every failure of the review store is answered as
RFC 7807 problem+json with the status its error class names (404, 409, 422, 503).
"""

from __future__ import annotations

import mimetypes
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, Field

from ..errors import ConfigError, DataError, ModelError, TaxonomistError
from ..review.errors import ReviewError
from ..review.queue import MAX_BULK, RESERVATION_SECONDS, Filters, ReviewStore

IMAGE_TYPES = {".jpg", ".jpeg", ".png", ".webp", ".gif"}


def problem(status: int, title: str, detail: str, instance: str = "") -> JSONResponse:
    return JSONResponse(
        {"type": "about:blank", "title": title, "status": status, "detail": detail, "instance": instance},
        status_code=status,
        media_type="application/problem+json",
    )


def _as_problem(exc: TaxonomistError, request: Request) -> JSONResponse:
    if isinstance(exc, ReviewError):
        status = exc.status
    elif isinstance(exc, (ConfigError, DataError)):
        status = 422
    elif isinstance(exc, ModelError):
        status = 409
    else:
        status = 400
    titles = {404: "Not found", 409: "Conflict", 422: "Invalid request", 503: "Unavailable"}
    return problem(status, titles.get(status, "Bad request"), str(exc), request.url.path)


def _call(request: Request, work: Callable[[], Any]) -> Any:
    try:
        return work()
    except TaxonomistError as exc:
        return _as_problem(exc, request)


class FilterBody(BaseModel):
    category_id: str | None = Field(None, max_length=512)
    model_version: str | None = Field(None, max_length=256)
    reason: str | None = Field(None, max_length=64)
    min_confidence: float | None = Field(None, ge=0, le=1)
    max_confidence: float | None = Field(None, ge=0, le=1)

    def filters(self) -> Filters:
        return Filters(
            self.category_id or None,
            self.model_version or None,
            self.reason or None,
            self.min_confidence,
            self.max_confidence,
        )


class NextBody(FilterBody):
    reserve_seconds: int = Field(RESERVATION_SECONDS, ge=10, le=3600)


class DecisionBody(BaseModel):
    action: str = Field(..., pattern="^(accept|correct|skip)$")
    category_id: str | None = Field(None, min_length=1, max_length=512)


class BulkBody(FilterBody):
    limit: int = Field(1000, ge=1, le=MAX_BULK)


class RetrainBody(BaseModel):
    name: str = Field(..., min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._-]+$")


IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]


def review_router(
    reviewer: Callable[..., str],
    store: Callable[..., ReviewStore],
    *,
    admin: Callable[..., str] | None = None,
    model_store_dir: Callable[..., Path | None] | None = None,
    review_db: Callable[..., str | None] | None = None,
) -> APIRouter:
    """The review routes under /review (and /admin/retrain when `admin` is given).

    Args:
        reviewer: a dependency returning the caller's name; it must enforce the `review`
            scope (e.g. the app's `require_scope("review")`).
        store: a dependency returning the open `ReviewStore`.
        admin: a dependency enforcing the `admin` scope, for POST /admin/retrain.
        model_store_dir, review_db: dependencies returning the model store folder and the
            review database URL that retraining uses.
    """
    router = APIRouter(tags=["review"])
    Reviewer = Annotated[str, Depends(reviewer)]
    Store = Annotated[ReviewStore, Depends(store)]

    @router.get("/review/items", summary="Queue items in priority order")
    def list_items(
        request: Request,
        who: Reviewer,
        reviews: Store,
        category_id: Annotated[str | None, Query(max_length=512)] = None,
        model_version: Annotated[str | None, Query(max_length=256)] = None,
        reason: Annotated[str | None, Query(max_length=64)] = None,
        min_confidence: Annotated[float | None, Query(ge=0, le=1)] = None,
        max_confidence: Annotated[float | None, Query(ge=0, le=1)] = None,
        status: Annotated[str, Query(pattern="^(open|decided|superseded|any)$")] = "open",
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    ) -> Any:
        filters = Filters(category_id, model_version, reason, min_confidence, max_confidence, status)
        return _call(
            request,
            lambda: {
                "items": reviews.list_items(filters, limit=limit, offset=offset),
                "total": reviews.count(filters),
            },
        )

    @router.get("/review/items/{item_id}", summary="One queue item")
    def get_item(request: Request, item_id: int, who: Reviewer, reviews: Store) -> Any:
        return _call(request, lambda: reviews.get(item_id))

    @router.get("/review/items/{item_id}/image", summary="The product's photo")
    def get_image(request: Request, item_id: int, who: Reviewer, reviews: Store) -> Any:
        item = _call(request, lambda: reviews.get(item_id))
        if isinstance(item, Response):
            return item
        image = item.get("image")
        if not image:
            return problem(404, "Not found", f"item {item_id} has no photo", request.url.path)
        if image.startswith(("http://", "https://")):
            return JSONResponse({"url": image})
        path = Path(image)
        if path.suffix.lower() not in IMAGE_TYPES or not path.is_file():
            return problem(
                404, "Not found", f"item {item_id}'s photo is not readable here", request.url.path
            )
        return FileResponse(path, media_type=mimetypes.guess_type(path.name)[0])

    @router.post("/review/next", summary="Reserve the highest-priority free item")
    def next_item(request: Request, body: NextBody, who: Reviewer, reviews: Store) -> Any:
        result = _call(
            request, lambda: reviews.next_item(who, body.filters(), body.reserve_seconds)
        )
        return result if isinstance(result, Response) else {"item": result}

    @router.post("/review/items/{item_id}/reserve", summary="Reserve an item")
    def reserve(
        request: Request,
        item_id: int,
        who: Reviewer,
        reviews: Store,
        seconds: Annotated[int, Query(ge=10, le=3600)] = RESERVATION_SECONDS,
    ) -> Any:
        return _call(request, lambda: reviews.reserve(item_id, who, seconds))

    @router.post("/review/items/{item_id}/release", summary="Give a reservation back")
    def release(request: Request, item_id: int, who: Reviewer, reviews: Store) -> Any:
        return _call(request, lambda: reviews.release(item_id, who) or {"released": item_id})

    @router.post("/review/items/{item_id}/decision", summary="Accept, correct or skip")
    def decide(
        request: Request,
        item_id: int,
        body: DecisionBody,
        who: Reviewer,
        reviews: Store,
        idempotency_key: IdempotencyKey = None,
    ) -> Any:
        def work() -> Any:
            result = reviews.decide(
                item_id, who, body.action, body.category_id, idempotency_key=idempotency_key
            )
            return {
                "decision_id": result.decision_id,
                "item_id": result.item_id,
                "product_id": result.product_id,
                "action": result.action,
                "category_id": result.category_id,
                "reviewer": result.reviewer,
                "replayed": result.replayed,
            }

        return _call(request, work)

    @router.post("/review/bulk-accept", summary="Accept every open item matching the filters")
    def bulk_accept(
        request: Request,
        body: BulkBody,
        who: Reviewer,
        reviews: Store,
        idempotency_key: IdempotencyKey = None,
    ) -> Any:
        def work() -> Any:
            result = reviews.bulk_accept(
                body.filters(), who, idempotency_key=idempotency_key, limit=body.limit
            )
            return {
                "accepted": len(result.accepted),
                "item_ids": result.accepted,
                "skipped_reserved": result.skipped_reserved,
            }

        return _call(request, work)

    @router.get("/review/decisions", summary="The audit log, oldest first")
    def decisions(
        request: Request,
        who: Reviewer,
        reviews: Store,
        product_id: Annotated[str | None, Query(max_length=512)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    ) -> Any:
        return _call(
            request,
            lambda: {
                "decisions": reviews.decisions(product_id=product_id, limit=limit, offset=offset)
            },
        )

    @router.get("/review/categories", summary="Type-ahead search over the whole taxonomy")
    def categories(
        request: Request,
        who: Reviewer,
        reviews: Store,
        q: Annotated[str, Query(min_length=1, max_length=200)],
        limit: Annotated[int, Query(ge=1, le=50)] = 10,
    ) -> Any:
        taxonomy = reviews.taxonomy
        if taxonomy is None:
            return problem(409, "Conflict", "the review store has no taxonomy", request.url.path)
        if not q.strip():
            return {"categories": []}
        hits = taxonomy.search(q, limit=limit)
        return {"categories": [{"id": c.id, "path": c.path_str} for c in hits]}

    if admin is not None and model_store_dir is not None and review_db is not None:
        Admin = Annotated[str, Depends(admin)]

        @router.post("/admin/retrain", summary="Train, gate and maybe promote a candidate")
        def retrain_route(
            request: Request,
            body: RetrainBody,
            who: Admin,
            root: Annotated[Path | None, Depends(model_store_dir)],
            db: Annotated[str | None, Depends(review_db)],
        ) -> Any:
            from ..review.loop import retrain

            if root is None or db is None:
                return problem(
                    409,
                    "Conflict",
                    "retraining needs a model store and a review database; start the server "
                    "with both",
                    request.url.path,
                )
            return _call(request, lambda: retrain(root, body.name, db).to_dict())

    return router
