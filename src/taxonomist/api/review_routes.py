"""Reviewer API (`review` scope), the reviewer page, and the retrain call (`admin` scope).

`review_router(reviews, ...)` builds the routes around one open `ReviewStore`; the app
factory includes it (`create_app(routers=[...])`). The API key's name is the reviewer of
record. The review store's errors become problem+json with the status each error class
names (404 no item, 409 decided/reserved/expired, 422 unknown category, 503 database down).
"""

from __future__ import annotations

import mimetypes
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, Field

from ..review.errors import ReviewError
from ..review.queue import MAX_BULK, RESERVATION_SECONDS, Filters, ReviewStore
from .auth import ApiKey, require_scope
from .deps import require_json
from .problems import ApiProblem
from .schemas import ClassifyRequest, ModelName
from .serving import ModelRegistry

IMAGE_TYPES = {".jpg", ".jpeg", ".png", ".webp", ".gif"}
OPEN_ACCESS_REVIEWER = "local"  # the reviewer of record when the server runs without keys


@dataclass(frozen=True)
class _Queued:
    id: str
    text: str


def _web_file(name: str) -> Path:
    return Path(str(resources.files("taxonomist") / "web" / "static" / name))


@contextmanager
def _problems() -> Iterator[None]:
    try:
        yield
    except ReviewError as exc:
        raise ApiProblem(exc.status, str(exc)) from None


def _reviewer(key: Annotated[ApiKey | None, Depends(require_scope("review"))]) -> str:
    return key.name if key is not None else OPEN_ACCESS_REVIEWER


def _admin(key: Annotated[ApiKey | None, Depends(require_scope("admin"))]) -> str:
    return key.name if key is not None else OPEN_ACCESS_REVIEWER


Reviewer = Annotated[str, Depends(_reviewer)]
Admin = Annotated[str, Depends(_admin)]


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
    reviews: ReviewStore,
    *,
    model_store: Path | None = None,
    review_db: str | None = None,
) -> APIRouter:
    """The routes under /review, and POST /admin/retrain when a model store is given.

    Args:
        reviews: the open review store (its taxonomy checks corrections and answers
            the type-ahead search).
        model_store: the model store folder that `retrain` trains into.
        review_db: the review database URL, for `retrain`.
    """
    router = APIRouter(tags=["review"])
    if reviews.taxonomy is not None:
        # the search index is built on first use; build it now so a reviewer's first
        # keystroke does not wait for it
        import threading

        taxonomy = reviews.taxonomy
        threading.Thread(target=lambda: taxonomy.search("warm up", limit=1), daemon=True).start()

    @router.get("/review", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(_web_file("review.html"), media_type="text/html")

    @router.get("/review/review.js", include_in_schema=False)
    def script() -> FileResponse:
        return FileResponse(_web_file("review.js"), media_type="text/javascript")

    @router.get("/review/items", summary="Queue items in priority order")
    def list_items(
        who: Reviewer,
        category_id: Annotated[str | None, Query(max_length=512)] = None,
        model_version: Annotated[str | None, Query(max_length=256)] = None,
        reason: Annotated[str | None, Query(max_length=64)] = None,
        min_confidence: Annotated[float | None, Query(ge=0, le=1)] = None,
        max_confidence: Annotated[float | None, Query(ge=0, le=1)] = None,
        status: Annotated[str, Query(pattern="^(open|decided|superseded|any)$")] = "open",
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    ) -> Any:
        filters = Filters(
            category_id, model_version, reason, min_confidence, max_confidence, status
        )
        with _problems():
            return {
                "items": reviews.list_items(filters, limit=limit, offset=offset),
                "total": reviews.count(filters),
            }

    @router.get("/review/items/{item_id}", summary="One queue item")
    def get_item(item_id: int, who: Reviewer) -> Any:
        with _problems():
            return reviews.get(item_id)

    @router.get("/review/items/{item_id}/image", summary="The product's photo")
    def get_image(item_id: int, who: Reviewer) -> Any:
        with _problems():
            item = reviews.get(item_id)
        image = item.get("image")
        if not image:
            raise ApiProblem(404, f"item {item_id} has no photo")
        if image.startswith(("http://", "https://")):
            return JSONResponse({"url": image})
        path = Path(image)
        if path.suffix.lower() not in IMAGE_TYPES or not path.is_file():
            raise ApiProblem(404, f"item {item_id}'s photo is not readable on the server")
        return FileResponse(path, media_type=mimetypes.guess_type(path.name)[0])

    @router.get(
        "/review/items/{item_id}/explanation",
        summary="Why the model predicts what it does for an item: words and nearest products",
    )
    async def explain_item(item_id: int, request: Request, who: Reviewer) -> Any:
        import asyncio

        with _problems():
            item = await asyncio.to_thread(reviews.get, item_id)
        return await asyncio.to_thread(item_explanation, request.app.state.registry, item)

    @router.post("/review/next", summary="Reserve the highest-priority free item")
    def next_item(body: NextBody, who: Reviewer) -> Any:
        with _problems():
            return {"item": reviews.next_item(who, body.filters(), body.reserve_seconds)}

    @router.post("/review/items/{item_id}/reserve", summary="Reserve an item for a few minutes")
    def reserve(
        item_id: int,
        who: Reviewer,
        seconds: Annotated[int, Query(ge=1, le=3600)] = RESERVATION_SECONDS,
    ) -> Any:
        with _problems():
            return reviews.reserve(item_id, who, seconds)

    @router.post("/review/items/{item_id}/release", summary="Give a reservation back")
    def release(item_id: int, who: Reviewer) -> Any:
        with _problems():
            reviews.release(item_id, who)
        return {"released": item_id}

    @router.post("/review/items/{item_id}/decision", summary="Accept, correct or skip an item")
    def decide(
        item_id: int, body: DecisionBody, who: Reviewer, idempotency_key: IdempotencyKey = None
    ) -> Any:
        with _problems():
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

    @router.post("/review/bulk-accept", summary="Accept every open item matching the filters")
    def bulk_accept(body: BulkBody, who: Reviewer, idempotency_key: IdempotencyKey = None) -> Any:
        with _problems():
            result = reviews.bulk_accept(
                body.filters(), who, idempotency_key=idempotency_key, limit=body.limit
            )
        return {
            "accepted": len(result.accepted),
            "item_ids": result.accepted,
            "skipped_reserved": result.skipped_reserved,
        }

    @router.get("/review/decisions", summary="The audit log, oldest first")
    def decisions(
        who: Reviewer,
        product_id: Annotated[str | None, Query(max_length=512)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    ) -> Any:
        with _problems():
            return {
                "decisions": reviews.decisions(product_id=product_id, limit=limit, offset=offset)
            }

    @router.get("/review/categories", summary="Type-ahead search over the whole taxonomy")
    def categories(
        who: Reviewer,
        q: Annotated[str, Query(min_length=1, max_length=200)],
        limit: Annotated[int, Query(ge=1, le=50)] = 10,
    ) -> Any:
        if reviews.taxonomy is None:
            raise ApiProblem(409, "the review store was opened without a taxonomy")
        hits = reviews.taxonomy.search(q, limit=limit) if q.strip() else []
        return {"categories": [{"id": c.id, "path": c.path_str} for c in hits]}

    @router.post(
        "/review/queue/{name}",
        dependencies=[Depends(require_json)],
        summary="Classify products and queue those below the model's routing thresholds",
    )
    async def queue_products(
        name: ModelName,
        body: ClassifyRequest,
        request: Request,
        key: Annotated[ApiKey | None, Depends(require_scope("classify"))],
    ) -> Any:
        import asyncio

        from ..review.intake import to_review
        from ..routing import route
        from .routes_v1 import _records

        models: ModelRegistry = request.app.state.registry
        served = models.get(name)
        model = getattr(served.classifier, "model", None)
        routing = getattr(model, "routing", None)
        if routing is None:
            raise ApiProblem(
                409,
                f"model '{name}' has no routing thresholds (a zero-shot model, or trained "
                "before them): nothing decides which products need review",
            )
        records, _ = _records(body.items, served, request, None)
        preds, classifier = await models.batcher(name).submit(
            records, body.language, max(body.top_k, 5)
        )
        preds = route(preds, routing)
        identity = classifier.identity
        # the text the model read, as the review loop will train on it
        products = [_Queued(p.id, p.text) for p in classifier.products(records)]
        entries = to_review(
            preds, products, model_name=identity.name, model_version=identity.version or ""
        )
        with _problems():
            queued = await asyncio.to_thread(reviews.enqueue, entries)
        return {
            "model": {"name": identity.name, "version": identity.version},
            "queued": queued,
            "results": [
                {
                    "id": p.product_id,
                    "category_id": p.best.category_id if p.candidates else None,
                    "confidence": p.best.confidence if p.candidates else None,
                    "needs_review": p.needs_review,
                }
                for p in preds
            ],
        }

    if model_store is not None and review_db is not None:
        root, db = Path(model_store), review_db

        @router.post("/admin/retrain", summary="Train a candidate on reviewed labels; gate it")
        def retrain_route(body: RetrainBody, who: Admin) -> Any:
            from ..review.loop import retrain

            return retrain(root, body.name, db).to_dict()

    return router


def item_explanation(models: ModelRegistry, item: dict[str, Any]) -> dict[str, Any]:
    """The explanation of a queue item's text by the served model that queued it (by name;
    the only served model when there is just one), as `classify` with `explain: true`
    gives it. Photos are left out: a reviewer sees the photo itself, and its heat map would
    cost 16 model calls each time an item is shown."""
    from ..data.readers import Product
    from .routes_v1 import explanation_out
    from .schemas import EXPLAIN_NEIGHBOURS, MAX_EXPLAIN_WORDS

    name = item.get("model_name") or ""
    served_names = [n for n in models.names() if models.is_served(n)]
    if not models.is_served(name):
        if len(served_names) != 1:
            raise ApiProblem(
                404,
                f"item {item['id']} was queued by model '{name}', which this server does not "
                f"serve (serving: {', '.join(served_names) or 'none'})",
            )
        name = served_names[0]
    classifier = models.get(name).classifier
    if getattr(classifier, "model", None) is None:
        raise ApiProblem(409, f"model '{name}' is zero-shot: explanations need a trained model")
    text = item.get("text") or item.get("title") or ""
    if not text.strip():
        raise ApiProblem(409, f"item {item['id']} has no text to explain")
    # the model reads a local photo the queue holds (never a URL: the server fetches nothing)
    image = item.get("image")
    local = (
        image
        if classifier.uses_images
        and image
        and not image.startswith(("http://", "https://"))
        and Path(image).suffix.lower() in IMAGE_TYPES
        and Path(image).is_file()
        else None
    )
    product = Product(str(item["product_id"]), text, 0, image=local)
    [exp] = classifier.explain_products(
        [product], neighbours=EXPLAIN_NEIGHBOURS, photos=False, max_words=MAX_EXPLAIN_WORDS
    )
    identity = classifier.identity
    return {
        "item_id": item["id"],
        "model": {"name": name, "version": identity.version},
        # the explaining model may be newer than the one that queued the item
        "queued_by_version": item.get("model_version"),
        "explanation": explanation_out(exp, classifier.taxonomy, "en").model_dump(),
    }


def open_review_router(
    review_db: str, *, store: Path | None = None, model: Path | None = None
) -> APIRouter:
    """The review routes for `taxonomist serve --review-db`: the queue's taxonomy is the
    served model's (with a store, its first name's current version); retraining works on
    the store.

    Raises:
        DatabaseError: the database URL is malformed or the database is down.
    """
    from ..persistence import read_taxonomy
    from ..store import ModelStore

    reviews = ReviewStore(review_db)  # first: a bad URL or a database down fails at once
    if model is not None:
        reviews.taxonomy = read_taxonomy(model)
    elif store is not None:
        names = ModelStore(store).names()
        if names:
            reviews.taxonomy = read_taxonomy(ModelStore(store).current(names[0]))
    return review_router(reviews, model_store=store, review_db=review_db)
