"""Dependencies shared by the routers (and by routers other modules add).

All are `async def`: FastAPI runs a plain `def` dependency in a worker thread, a hop per
dependency per request that costs more than the check itself.
"""

from __future__ import annotations

from fastapi import Request

from .problems import ApiProblem
from .serving import ModelRegistry

JSON_TYPES = ("application/json",)


async def registry(request: Request) -> ModelRegistry:
    return request.app.state.registry


async def require_json(request: Request) -> None:
    """415 unless the body is declared JSON (application/json or any +json type)."""
    declared = request.headers.get("content-type", "")
    media = declared.split(";", 1)[0].strip().lower()
    if media not in JSON_TYPES and not media.endswith("+json"):
        shown = media or "none"
        raise ApiProblem(415, f"send the body as application/json (content type was {shown})")
