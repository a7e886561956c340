"""local_services: appointments (service specs, resources, bookings, resource cells) and
the module's tenant settings

Revision ID: local_0004
Revises: local_0003
"""
from typing import Any

from alembic import op
import sqlalchemy as sa

revision = "local_0004"
down_revision = "local_0003"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def _fk(table: str, col: str, ref: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([col], [f"{ref}.id"], name=op.f(f"fk_{table}_{col}_{ref}"))


def _base(table: str) -> list[Any]:
    return [sa.Column("id", ID, nullable=False), sa.Column("tenant_id", ID, nullable=False),
            _fk(table, "tenant_id", "tenants"), sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}"))]


def upgrade() -> None:
    t = "local_service_specs"
    op.create_table(
        t, *_base(t),
        sa.Column("product_id", ID, nullable=False),
        sa.Column("duration_min", sa.Integer(), nullable=False),
        sa.Column("step_min", sa.Integer(), nullable=False),
        sa.Column("deposit_fen", sa.BigInteger(), nullable=False),
        sa.Column("cancel_free_hours", sa.Integer(), nullable=False),
        sa.Column("late_refund_bp", sa.Integer(), nullable=False),
        sa.Column("remind_hours", sa.Integer(), nullable=False),
        _fk(t, "product_id", "products"),
        sa.UniqueConstraint("tenant_id", "product_id", name=op.f(f"uq_{t}_tenant_id_product_id")),
    )
    op.create_index(f"ix_{t}_tenant_id", t, ["tenant_id"])

    t = "local_resources"
    op.create_table(
        t, *_base(t),
        sa.Column("store_id", ID, nullable=False),
        sa.Column("name", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        _fk(t, "store_id", "local_stores"),
    )
    op.create_index(f"ix_{t}_tenant_id", t, ["tenant_id"])
    op.create_index(f"ix_{t}_store_id", t, ["store_id"])

    t = "local_resource_services"
    op.create_table(
        t, *_base(t),
        sa.Column("resource_id", ID, nullable=False),
        sa.Column("product_id", ID, nullable=False),
        _fk(t, "resource_id", "local_resources"), _fk(t, "product_id", "products"),
        sa.UniqueConstraint("tenant_id", "resource_id", "product_id",
                            name=op.f(f"uq_{t}_tenant_id_resource_id_product_id")),
    )
    op.create_index(f"ix_{t}_tenant_id", t, ["tenant_id"])
    op.create_index(f"ix_{t}_resource_id", t, ["resource_id"])

    t = "local_bookings"
    op.create_table(
        t, *_base(t),
        sa.Column("member_id", ID, nullable=False),
        sa.Column("product_id", ID, nullable=False),
        sa.Column("store_id", ID, nullable=False),
        sa.Column("resource_id", ID, nullable=False),
        sa.Column("order_id", ID, nullable=False),
        sa.Column("starts_at", TS, nullable=False),
        sa.Column("ends_at", TS, nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("deposit", sa.Boolean(), nullable=False),
        sa.Column("reminded_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("closed_at", TS, nullable=True),
        _fk(t, "member_id", "members"), _fk(t, "product_id", "products"), _fk(t, "store_id", "local_stores"),
        _fk(t, "resource_id", "local_resources"), _fk(t, "order_id", "orders"),
        sa.UniqueConstraint("tenant_id", "order_id", name=op.f(f"uq_{t}_tenant_id_order_id")),
    )
    op.create_index(f"ix_{t}_tenant_id", t, ["tenant_id"])
    op.create_index("ix_local_bookings_member", t, ["tenant_id", "member_id", "status"])
    op.create_index("ix_local_bookings_due", t, ["status", "starts_at"])

    t = "local_resource_cells"
    op.create_table(
        t, *_base(t),
        sa.Column("resource_id", ID, nullable=False),
        sa.Column("cell", sa.BigInteger(), nullable=False),
        sa.Column("booking_id", ID, nullable=False),
        _fk(t, "resource_id", "local_resources"), _fk(t, "booking_id", "local_bookings"),
        sa.UniqueConstraint("resource_id", "cell", name=op.f(f"uq_{t}_resource_id_cell")),
    )
    op.create_index(f"ix_{t}_tenant_id", t, ["tenant_id"])
    op.create_index(f"ix_{t}_booking_id", t, ["booking_id"])

    op.create_table(
        "local_settings",
        sa.Column("id", ID, nullable=False),
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("reminder_template_id", sa.String(64), nullable=False),
        _fk("local_settings", "tenant_id", "tenants"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_local_settings")),
        sa.UniqueConstraint("tenant_id", name=op.f("uq_local_settings_tenant_id")),
    )


def downgrade() -> None:
    for t in ("local_settings", "local_resource_cells", "local_bookings", "local_resource_services",
              "local_resources", "local_service_specs"):
        op.drop_table(t)
