"""Queue items and the append-only decision log.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "review_items",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("product_id", sa.String(512), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("image", sa.Text),
        sa.Column("category_id", sa.String(512), nullable=False),
        sa.Column("category_path", sa.Text, nullable=False),
        sa.Column("confidence", sa.Float, nullable=False),
        sa.Column("suggestions", sa.JSON, nullable=False),
        sa.Column("model_name", sa.String(256), nullable=False),
        sa.Column("model_version", sa.String(256), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reserved_by", sa.String(256)),
        sa.Column("reserved_until", sa.DateTime),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("decided_at", sa.DateTime),
        sa.Column("decided_by", sa.String(256)),
        sa.Column("final_category_id", sa.String(512)),
    )
    op.create_index("ix_review_items_product_id", "review_items", ["product_id"])
    op.create_index("ix_review_items_status_category", "review_items", ["status", "category_id"])
    # at most one open item per product, even with two writers racing
    op.create_index(
        "ux_review_items_open_product",
        "review_items",
        ["product_id"],
        unique=True,
        sqlite_where=sa.text("status = 'open'"),
        postgresql_where=sa.text("status = 'open'"),
    )
    op.create_table(
        "review_decisions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("item_id", sa.Integer, sa.ForeignKey("review_items.id"), nullable=False),
        sa.Column("product_id", sa.String(512), nullable=False),
        sa.Column("reviewer", sa.String(256), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("before_category_id", sa.String(512), nullable=False),
        sa.Column("after_category_id", sa.String(512)),
        sa.Column("after_path", sa.Text),
        sa.Column("model_name", sa.String(256), nullable=False),
        sa.Column("model_version", sa.String(256), nullable=False),
        sa.Column("bulk", sa.Integer, nullable=False),
        sa.Column("idempotency_key", sa.String(256), unique=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_review_decisions_item_id", "review_decisions", ["item_id"])
    op.create_index("ix_review_decisions_product_id", "review_decisions", ["product_id"])
    # the audit log is append-only in the database itself, not only by convention
    if op.get_bind().dialect.name == "sqlite":
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER review_decisions_no_{event.lower()} BEFORE {event} ON "
                "review_decisions BEGIN SELECT RAISE(ABORT, 'review_decisions is "
                "append-only'); END"
            )
    else:
        op.execute(
            "CREATE FUNCTION review_decisions_append_only() RETURNS trigger AS $$ BEGIN "
            "RAISE EXCEPTION 'review_decisions is append-only'; END; $$ LANGUAGE plpgsql"
        )
        op.execute(
            "CREATE TRIGGER review_decisions_append_only BEFORE UPDATE OR DELETE ON "
            "review_decisions FOR EACH ROW EXECUTE FUNCTION review_decisions_append_only()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.execute("DROP TRIGGER review_decisions_append_only ON review_decisions")
        op.execute("DROP FUNCTION review_decisions_append_only()")
    op.drop_table("review_decisions")
    op.drop_table("review_items")
