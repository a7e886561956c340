"""local_services: shipping-fee templates, delivery zones, slot templates and uses,
addresses' coordinates

Revision ID: local_0003
Revises: local_0002
"""
from typing import Any

from alembic import op
import sqlalchemy as sa

revision = "local_0003"
down_revision = "local_0002"
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
    t = "local_ship_templates"
    op.create_table(
        t, *_base(t),
        sa.Column("name", sa.String(40), nullable=False),
        sa.Column("mode", sa.String(8), nullable=False),
        sa.Column("free_over_fen", sa.BigInteger(), nullable=False),
        sa.Column("unserved", sa.JSON(), nullable=False),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index(f"ix_{t}_tenant_id", t, ["tenant_id"])

    t = "local_zones"
    op.create_table(
        t, *_base(t),
        sa.Column("store_id", ID, nullable=False),
        sa.Column("name", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("radius_m", sa.Integer(), nullable=False),
        sa.Column("polygon", sa.JSON(), nullable=False),
        sa.Column("tiers", sa.JSON(), nullable=False),
        sa.Column("min_order_fen", sa.BigInteger(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        _fk(t, "store_id", "local_stores"),
    )
    op.create_index(f"ix_{t}_tenant_id", t, ["tenant_id"])
    op.create_index(f"ix_{t}_store_id", t, ["store_id"])

    t = "local_slot_templates"
    op.create_table(
        t, *_base(t),
        sa.Column("store_id", ID, nullable=False),
        sa.Column("weekday", sa.Integer(), nullable=False),
        sa.Column("start_min", sa.Integer(), nullable=False),
        sa.Column("end_min", sa.Integer(), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        _fk(t, "store_id", "local_stores"),
    )
    op.create_index(f"ix_{t}_tenant_id", t, ["tenant_id"])
    op.create_index(f"ix_{t}_store_id", t, ["store_id"])

    t = "local_slot_uses"
    op.create_table(
        t, *_base(t),
        sa.Column("store_id", ID, nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("start_min", sa.Integer(), nullable=False),
        sa.Column("end_min", sa.Integer(), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("taken", sa.Integer(), nullable=False),
        _fk(t, "store_id", "local_stores"),
        sa.UniqueConstraint("tenant_id", "store_id", "day", "start_min",
                            name=op.f(f"uq_{t}_tenant_id_store_id_day_start_min")),
        sa.CheckConstraint("taken >= 0 AND taken <= capacity", name=op.f("ck_local_slot_uses_taken")),
    )
    op.create_index(f"ix_{t}_tenant_id", t, ["tenant_id"])

    t = "local_address_points"
    op.create_table(
        t, *_base(t),
        sa.Column("address_id", ID, nullable=False),
        sa.Column("member_id", ID, nullable=False),
        sa.Column("lat_e6", sa.Integer(), nullable=False),
        sa.Column("lng_e6", sa.Integer(), nullable=False),
        _fk(t, "address_id", "addresses"), _fk(t, "member_id", "members"),
        sa.UniqueConstraint("tenant_id", "address_id", name=op.f(f"uq_{t}_tenant_id_address_id")),
    )
    op.create_index(f"ix_{t}_tenant_id", t, ["tenant_id"])
    op.create_index(f"ix_{t}_member_id", t, ["member_id"])


def downgrade() -> None:
    for t in ("local_address_points", "local_slot_uses", "local_slot_templates", "local_zones", "local_ship_templates"):
        op.drop_table(t)
