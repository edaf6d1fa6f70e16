"""Alembic environment for the review store, run only programmatically (`db.migrate`): the
caller hands over an open connection in `config.attributes["connection"]`."""

from __future__ import annotations

from alembic import context

from taxonomist.review.schema import Base

VERSION_TABLE = "review_alembic_version"  # its own table: the database may host others


def run() -> None:
    connection = context.config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # two servers starting at once must not both create the tables
            connection.exec_driver_sql("SELECT pg_advisory_xact_lock(731001)")
        context.run_migrations()


run()
