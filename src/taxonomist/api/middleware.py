"""One ASGI middleware for what every request needs: an id, a body cap, metrics, a log line.

Pure ASGI (not BaseHTTPMiddleware) to keep the per-request cost small. The body is read here,
up to the cap, before any route sees it: a 3 MB upload is refused with 413 without being
parsed, whether or not it declared its length. Bodies are never logged.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from .metrics import Metrics
from .problems import PROBLEM_JSON, problem_body

logger = logging.getLogger("taxonomist.api.access")

REQUEST_ID_HEADER = "x-request-id"
# a client may send any token as a method: only these become label values
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

Scope = dict[str, Any]


class RequestMiddleware:
    def __init__(
        self, app: Any, *, metrics: Metrics, max_body_bytes: int, is_model: Callable[[str], bool]
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body = max_body_bytes
        self.is_model = is_model

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        given = _header(scope, REQUEST_ID_HEADER)
        request_id = given if given and _SAFE_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        status = {"code": 500}

        async def send_with_id(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        self.metrics.in_flight.inc()
        try:
            body, too_large = await self._read_body(scope, receive)
            if too_large:
                await _send_problem(
                    send_with_id,
                    413,
                    f"request body exceeds {self.max_body:,} bytes",
                    scope["path"],
                    request_id,
                )
            else:
                await self.app(scope, _replay(body, receive), send_with_id)
        finally:
            self.metrics.in_flight.dec()
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "<unmatched>"
            name = scope.get("path_params", {}).get("name", "")
            model = name if name and self.is_model(name) else ""
            method = scope["method"] if scope["method"] in _METHODS else "other"
            self.metrics.requests.labels(method, template, model, str(status["code"])).inc()
            self.metrics.latency.labels(method, template, model).observe(elapsed)
            logger.info(
                "%s %s %s %.1f ms request_id=%s",
                scope["method"],
                scope["path"],
                status["code"],
                elapsed * 1000,
                request_id,
            )

    async def _read_body(self, scope: Scope, receive: Any) -> tuple[bytes | None, bool]:
        if scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            return None, False
        declared = _header(scope, "content-length")
        if declared and declared.isdigit() and int(declared) > self.max_body:
            return None, True
        chunks: list[bytes] = []
        total = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return b"".join(chunks), False
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > self.max_body:
                return None, True
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks), False


def _header(scope: Scope, name: str) -> str | None:
    key = name.encode()
    for k, v in scope.get("headers", []):
        if k.lower() == key:
            return v.decode("latin-1")
    return None


def _replay(body: bytes | None, receive: Any) -> Any:
    if body is None:
        return receive
    sent = False

    async def replay() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _send_problem(send: Any, status: int, detail: str, path: str, request_id: str) -> None:
    body = json.dumps(
        {**problem_body(status, detail), "instance": path, "request_id": request_id}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", PROBLEM_JSON.encode()),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
