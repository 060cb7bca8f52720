"""order merges: orders of one buyer to one address shipped together (and taken apart again)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 15:30:00
"""

import sqlalchemy as sa
from alembic import op

NOW = sa.text("now()")

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "order_merges",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("dissolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_merges")),
        schema="tenant",
    )
    # ALTER statements are not schema-translated: they name the real schema.
    schema = op.get_context().version_table_schema
    op.add_column("orders", sa.Column("merge_id", sa.BigInteger(), nullable=True), schema=schema)
    op.add_column(
        "orders", sa.Column("unmerged_at", sa.DateTime(timezone=True), nullable=True), schema=schema
    )
    op.create_foreign_key(
        op.f("fk_orders_merge_id_order_merges"),
        "orders",
        "order_merges",
        ["merge_id"],
        ["id"],
        source_schema=schema,
        referent_schema=schema,
        ondelete="SET NULL",
    )
    op.create_index(op.f("ix_orders_merge_id"), "orders", ["merge_id"], unique=False, schema=schema)


def downgrade() -> None:
    schema = op.get_context().version_table_schema
    op.drop_index(op.f("ix_orders_merge_id"), table_name="orders", schema=schema)
    op.drop_constraint(op.f("fk_orders_merge_id_order_merges"), "orders", type_="foreignkey", schema=schema)
    op.drop_column("orders", "unmerged_at", schema=schema)
    op.drop_column("orders", "merge_id", schema=schema)
    op.drop_table("order_merges", schema="tenant")
