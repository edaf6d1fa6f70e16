"""The REST API (FastAPI): `create_app(settings)`; needs the `api` extra.

Example:
    >>> from taxonomist.api import ApiSettings, create_app  # doctest: +SKIP
    >>> app = create_app(ApiSettings(store="models/", keys_file="keys.txt"))  # doctest: +SKIP
"""

from .app import create_app
from .auth import Scope, require_scope
from .settings import ApiSettings

__all__ = ["ApiSettings", "Scope", "create_app", "require_scope"]
