"""API keys: only their sha256 is kept; each key carries scopes (classify, review, admin).

A key file (or the `TAXONOMIST_API_KEYS` variable) holds one key a line:

    <sha256 hex of the key>  <scope>[,<scope>...]  [a name for logs]

`taxonomist api-key` makes a random key and prints its line. Keys are random 32-byte tokens,
so a plain sha256 is enough (no password stretching needed) and a leaked file reveals none.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from ..errors import ConfigError


class Scope(str, Enum):
    classify = "classify"
    review = "review"
    admin = "admin"  # grants every scope


@dataclass(frozen=True)
class ApiKey:
    name: str
    scopes: frozenset[Scope]


class AuthError(Exception):
    """401 (no or unknown key) or 403 (a key without the scope)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key(scopes: list[str], name: str = "") -> tuple[str, str]:
    """A fresh random key and the line that stores its hash."""
    parsed = _scopes(",".join(scopes), "the scopes")
    key = "tx_" + secrets.token_urlsafe(32)
    line = f"{hash_key(key)}  {','.join(sorted(s.value for s in parsed))}"
    return key, f"{line}  {name}".rstrip()


def _scopes(text: str, where: str) -> frozenset[Scope]:
    found = set()
    for part in text.split(","):
        part = part.strip()
        try:
            found.add(Scope(part))
        except ValueError:
            valid = ", ".join(s.value for s in Scope)
            raise ConfigError(f"{where}: unknown scope '{part}'; use {valid}") from None
    return frozenset(found)


def parse_keys(text: str, source: str) -> dict[str, ApiKey]:
    """Hash -> key, from the text of a key file; a bad line raises naming its number."""
    keys: dict[str, ApiKey] = {}
    for number, raw in enumerate(text.replace(";", "\n").splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split(None, 2)
        where = f"{source}: line {number}"
        digest = parts[0].lower()
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ConfigError(
                f"{where}: expected the sha256 hex of a key (64 characters), found "
                f"{len(digest)} characters; make entries with `taxonomist api-key`"
            )
        if len(parts) < 2:
            raise ConfigError(f"{where}: no scopes after the key hash")
        name = parts[2].strip() if len(parts) > 2 else f"key-{digest[:8]}"
        keys[digest] = ApiKey(name, _scopes(parts[1], where))
    return keys


def load_keys(keys_file: Path | None, keys_text: str | None) -> dict[str, ApiKey]:
    keys: dict[str, ApiKey] = {}
    if keys_file is not None:
        try:
            text = Path(keys_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read the key file {keys_file} ({exc})") from None
        keys.update(parse_keys(text, str(keys_file)))
    if keys_text:
        keys.update(parse_keys(keys_text, "TAXONOMIST_API_KEYS"))
    return keys


class KeyRing:
    """Checks a request's key and scope; `open_access` lets every request through."""

    def __init__(self, keys: dict[str, ApiKey], open_access: bool = False) -> None:
        self.keys = keys
        self.open_access = open_access

    def check(self, request: Request, scope: Scope) -> ApiKey | None:
        if self.open_access:
            return None
        presented = _presented_key(request)
        if presented is None:
            raise AuthError(401, "an API key is required: send 'Authorization: Bearer <key>'")
        key = self.keys.get(hash_key(presented))
        if key is None:
            raise AuthError(401, "unknown API key")
        if scope not in key.scopes and Scope.admin not in key.scopes:
            raise AuthError(403, f"this API key lacks the '{scope.value}' scope")
        return key


def _presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer " and header[7:].strip():
        return header[7:].strip()
    return request.headers.get("x-api-key") or None


_BEARER = HTTPBearer(auto_error=False, description="Authorization: Bearer <API key>")
_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False, description="The API key")


def require_scope(scope: str | Scope) -> Callable[..., Awaitable[ApiKey | None]]:
    """A FastAPI dependency: 401/403 unless the request's key has `scope`.

    Example:
        >>> router = APIRouter(dependencies=[Depends(require_scope("review"))])  # doctest: +SKIP
    """
    wanted = Scope(scope)

    async def dependency(
        request: Request,
        _bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)],
        _header: Annotated[str | None, Depends(_HEADER)],
    ) -> ApiKey | None:
        # the two security parameters only document the schemes in OpenAPI (and give /docs
        # its Authorize button); the key ring reads the headers itself
        key = request.app.state.keyring.check(request, wanted)
        request.state.api_key = key
        return key

    dependency.__name__ = f"require_{wanted.value}"
    return dependency
