"""RFC 9457 problem details (`application/problem+json`) for every error the API returns.

A caller's mistake is a 4xx naming the field; only a fault of the server is a 500, and that
one says nothing about the request beyond its id (which is in the log line too).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import DataError, TaxonomistError
from .auth import AuthError

logger = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


class ApiProblem(Exception):
    """Raised by routes for a caller's mistake that pydantic cannot see (unknown model...)."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors
        self.headers = headers


def problem_body(status: int, detail: str) -> dict[str, Any]:
    """The RFC 7807 members every problem has; callers add `instance`, `request_id`..."""
    return {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }


def problem(
    status: int,
    detail: str,
    request: Request | None = None,
    *,
    errors: list[dict[str, str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = problem_body(status, detail)
    if request is not None:
        body["instance"] = request.url.path
        request_id = getattr(request.state, "request_id", None)
        if request_id:
            body["request_id"] = request_id
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def field_name(loc: Sequence[Any]) -> str:
    """('body', 'products', 0, 'title') -> 'products[0].title'."""
    out = ""
    for part in loc[1:] if loc and loc[0] in ("body", "query", "path", "header") else loc:
        # pydantic names the branch of a union it tried ("ProductIn", "list[ProductIn]");
        # field names here are lower-case, so such tags are told apart and left out
        if isinstance(part, str) and ("[" in part or part[:1].isupper()):
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or (str(loc[0]) if loc else "")


_PATTERN_MESSAGES = {
    "image": "must be base64 data, a data:image/...;base64, URI or an http(s) URL "
    "(the server reads no file paths)",
    "title": "must contain a visible character",
    "id": "must contain a visible character",
    "name": "must be a model or taxonomy name (letters, digits, '.', '_', '-')",
    "language": "must be 'en' or 'zh'",
}


def _validation_errors(exc: RequestValidationError) -> tuple[int, list[dict[str, str]]]:
    errors = []
    status = 422
    for err in exc.errors():
        if err.get("type") == "json_invalid":
            status = 400
        message = str(err.get("msg", "invalid"))
        loc = err.get("loc", ())
        if err.get("type") == "string_pattern_mismatch" and loc:
            message = _PATTERN_MESSAGES.get(str(loc[-1]), "has an unexpected form")
        # pydantic's own messages never include the input value; keep it that way (a
        # 20,000-character title echoed back helps no one and may be private)
        errors.append({"field": field_name(err.get("loc", ())), "message": message})
    return status, errors


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        status, errors = _validation_errors(exc)
        if status == 400:
            return problem(400, "the request body is not valid JSON", request)
        first = errors[0] if errors else {"field": "", "message": "invalid request"}
        detail = f"{first['field']}: {first['message']}" if first["field"] else first["message"]
        if len(errors) > 1:
            detail += f" (and {len(errors) - 1} more)"
        return problem(422, detail, request, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no such resource: {request.url.path}"
        elif exc.status_code == 405:
            detail = f"method {request.method} is not allowed on {request.url.path}"
        return problem(exc.status_code, detail, request, headers=exc.headers)

    @app.exception_handler(ApiProblem)
    async def _api(request: Request, exc: ApiProblem) -> JSONResponse:
        return problem(exc.status, exc.detail, request, errors=exc.errors, headers=exc.headers)

    @app.exception_handler(AuthError)
    async def _auth(request: Request, exc: AuthError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return problem(exc.status, exc.detail, request, headers=headers)

    @app.exception_handler(DataError)
    async def _data(request: Request, exc: DataError) -> JSONResponse:
        errors = [{"field": exc.field or "", "message": exc.reason}]
        return problem(422, str(exc), request, errors=errors)

    @app.exception_handler(TaxonomistError)
    async def _domain(request: Request, exc: TaxonomistError) -> JSONResponse:
        return problem(422, str(exc), request)

    @app.exception_handler(Exception)
    async def _server(request: Request, exc: Exception) -> JSONResponse:
        request_id = getattr(request.state, "request_id", "-")
        logger.exception("internal error (request %s)", request_id)
        return problem(500, "internal server error; the log has the details", request)
