"""The app factory: `create_app(settings)` wires models, routers, errors, metrics and the page.

Other modules add routers through `routers=` (e.g. the review queue), protecting them with
`require_scope("review")` from `taxonomist.api.auth`.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .. import __version__
from .auth import KeyRing, load_keys
from .metrics import Metrics
from .middleware import RequestMiddleware
from .problems import PROBLEM_JSON, install_handlers, problem
from .routes_v1 import router as v1_router
from .routes_v2 import health_router as v2_health_router
from .routes_v2 import router as v2_router
from .schemas import Health, Problem
from .serving import Loader, ModelRegistry
from .settings import ApiSettings

logger = logging.getLogger(__name__)

# every operation documents its problem responses, so clients (and schemathesis) know them
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "content": {PROBLEM_JSON: {}}, "description": text}
    for status, text in {
        400: "Malformed request",
        401: "No or unknown API key",
        403: "The key lacks the scope",
        404: "No such model, taxonomy or category",
        405: "Method not allowed",
        413: "Body too large",
        415: "Body is not JSON",
        422: "Invalid field (named in `errors`)",
        503: "Model still loading",
    }.items()
}


def _web_dir() -> Path:
    return Path(str(resources.files("taxonomist") / "web" / "static"))


def _docs_assets() -> Path | None:
    """Swagger UI's files from the `swagger-ui-py` package (the `api` extra), found without
    importing it; None when absent, and /docs then loads them from FastAPI's default CDN.
    Serving them locally keeps /docs working on a machine without internet access."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "static"
    return path if (path / "swagger-ui-bundle.js").is_file() else None


def health_router() -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/livez", response_model=Health, summary="The process is up")
    async def livez(request: Request) -> Health:
        return Health(status="ok")

    @router.get("/readyz", response_model=Health, summary="Every model is loaded (else 503)")
    async def readyz(request: Request) -> Any:
        models: ModelRegistry = request.app.state.registry
        if not models.ready:
            waiting = [n for n, ok in models.status().items() if not ok] or ["none configured"]
            return problem(503, f"models not loaded: {', '.join(waiting)}", request)
        return Health(status="ok", models=models.status())

    @router.get(
        "/metrics",
        summary="Prometheus metrics",
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}}},
    )
    async def metrics(request: Request) -> Response:
        data = generate_latest(request.app.state.metrics.registry)
        return Response(data, media_type=CONTENT_TYPE_LATEST)

    return router


def create_app(
    settings: ApiSettings | None = None,
    *,
    classifiers: Mapping[str, Any] | None = None,
    store: Any = None,
    routers: Iterable[APIRouter] = (),
    loader: Loader | None = None,
) -> FastAPI:
    """Build the API app.

    Args:
        settings: server settings (default: from `TAXONOMIST_API_*` variables).
        classifiers: already-loaded classifiers by name (served at once, never reloaded).
        store: a `ModelStore` to serve (instead of `settings.store`); its pointer is watched.
        routers: extra routers to include (each protects itself with `require_scope`).
        loader: how a model directory becomes a classifier (default `load_classifier`).

    Returns:
        A FastAPI app; models named by settings or the store load in the background at start
        (`/readyz` is 503 until they are in).

    Example:
        >>> app = create_app(ApiSettings(model="models/fast", open_access=True))  # doctest: +SKIP
        >>> uvicorn.run(app, host="127.0.0.1", port=8000)  # doctest: +SKIP
    """
    settings = settings or ApiSettings()
    metrics = Metrics(__version__)
    models = ModelRegistry(settings, metrics, classifiers=classifiers, store=store, loader=loader)
    keyring = KeyRing(load_keys(settings.keys_file, settings.keys), settings.open_access)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        models.start()
        try:
            yield
        finally:
            await models.stop()

    docs_assets = _docs_assets()
    app = FastAPI(
        docs_url=None if docs_assets else "/docs",
        title="Taxonomist",
        version=__version__,
        description="Sort products into a category taxonomy. Errors are RFC 9457 problem "
        "details. Send API keys as `Authorization: Bearer <key>`.",
        lifespan=lifespan,
        responses=PROBLEM_RESPONSES,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.registry = models
    app.state.keyring = keyring
    app.state.taxonomies = {}
    install_handlers(app)
    app.include_router(health_router())
    app.include_router(v1_router)
    app.include_router(v2_health_router)
    app.include_router(v2_router)
    for extra in routers:
        app.include_router(extra)
    if settings.web:
        web = _web_dir()
        app.mount("/static", StaticFiles(directory=web), name="static")

        @app.get("/", include_in_schema=False)
        async def page() -> FileResponse:
            return FileResponse(web / "index.html")

    if docs_assets is not None:
        app.mount("/docs-static", StaticFiles(directory=docs_assets), name="docs-static")

        @app.get("/docs", include_in_schema=False)
        async def docs() -> HTMLResponse:
            return get_swagger_ui_html(
                openapi_url=app.openapi_url or "/openapi.json",
                title="Taxonomist API",
                swagger_js_url="/docs-static/swagger-ui-bundle.js",
                swagger_css_url="/docs-static/swagger-ui.css",
                swagger_favicon_url="/docs-static/favicon-32x32.png",
            )

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> Response:
        return Response(status_code=204)

    app.add_middleware(
        RequestMiddleware,
        metrics=metrics,
        max_body_bytes=settings.max_body_bytes,
        is_model=models.is_served,
    )
    return app
