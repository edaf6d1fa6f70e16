"""Opening the review database: URL checks, engine settings per backend, migrations.

SQLite (the default: a file beside the model store) runs in WAL mode with `synchronous=FULL`,
so a decision the server acknowledged survives the process being killed; every transaction
starts with `BEGIN IMMEDIATE`, so two writers queue on the lock instead of failing halfway.
PostgreSQL is used through psycopg 3 when the URL says `postgresql://`.
"""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import DatabaseError

logger = logging.getLogger(__name__)

DEFAULT_FILE = "review.sqlite"
URL_HELP = "expected sqlite:///PATH, a file path, or postgresql://USER@HOST:PORT/DATABASE"


def database_url(spec: str | Path) -> Any:
    """The SQLAlchemy URL for a user's `--review-db`: a URL or a plain file path (SQLite).

    Raises:
        DatabaseError: a malformed URL or an unsupported scheme.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    text = str(spec).strip()
    if not text:
        raise DatabaseError(f"empty review database URL; {URL_HELP}")
    if "://" not in text:
        if ":" in text.split("/")[0] and not Path(text).exists():
            raise DatabaseError(f"malformed review database URL '{text}'; {URL_HELP}")
        return make_url("sqlite:///" + str(Path(text).expanduser().resolve()))
    try:
        url = make_url(text)
    except (ArgumentError, ValueError) as exc:
        raise DatabaseError(f"malformed review database URL '{text}' ({exc}); {URL_HELP}") from None
    backend = url.get_backend_name()
    if backend == "sqlite":
        if not url.database or url.database == ":memory:":
            raise DatabaseError(
                f"review database '{text}' names no file (an in-memory database would lose "
                f"every decision); {URL_HELP}"
            )
        return url
    if backend in ("postgresql", "postgres"):
        if not url.host and not url.query.get("host"):
            raise DatabaseError(f"review database URL '{text}' names no host; {URL_HELP}")
        return url.set(drivername="postgresql+psycopg")
    raise DatabaseError(f"unsupported review database '{backend}' in '{text}'; {URL_HELP}")


def describe(url: Any) -> str:
    """The URL without its password, for messages and logs."""
    return url.render_as_string(hide_password=True)


def create_engine(spec: str | Path) -> Any:
    """An engine for `spec`, not yet connected (see `open_engine`)."""
    import sqlalchemy as sa

    url = database_url(spec)
    if url.get_backend_name() == "sqlite":
        parent = Path(url.database).parent
        if not parent.is_dir():
            raise DatabaseError(f"folder for the review database does not exist: {parent}")
        engine = sa.create_engine(url, connect_args={"timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            # let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite would defer it)
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @sa.event.listens_for(engine, "begin")
        def _begin(connection: Any) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return sa.create_engine(
        url, connect_args={"connect_timeout": 5}, pool_pre_ping=True, pool_size=5
    )


def migrate(engine: Any) -> None:
    """Bring the schema to the newest revision shipped in this package."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option(
        "script_location", str(resources.files("taxonomist.review") / "migrations")
    )
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def open_engine(spec: str | Path) -> Any:
    """Connect to the review database and migrate it.

    Raises:
        DatabaseError: malformed URL, unreachable server, unusable file, failed migration;
            the message names the database (without its password) and the cause.
    """
    from sqlalchemy.exc import DBAPIError, SQLAlchemyError

    engine = create_engine(spec)
    try:
        migrate(engine)
    except DBAPIError as exc:
        engine.dispose()
        hint = ""
        if engine.dialect.name == "postgresql" and "connect" in _cause(exc).lower():
            hint = "; is the PostgreSQL server running and reachable?"
        raise DatabaseError(
            f"cannot use the review database {describe(engine.url)}: {_cause(exc)}{hint}"
        ) from None
    except SQLAlchemyError as exc:
        engine.dispose()
        raise DatabaseError(f"review database {describe(engine.url)}: {exc}") from None
    return engine


def _cause(exc: Exception) -> str:
    """The driver's one-line reason (connection refused, not a database...)."""
    original = getattr(exc, "orig", None) or exc
    text = str(original).strip().splitlines()
    return text[0] if text else type(original).__name__
