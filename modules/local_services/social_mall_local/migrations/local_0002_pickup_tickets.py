"""local_services: product fulfilment rules, orders' fulfilment details, tickets (核销),
verifications, staff, bind codes, attempt counters

Revision ID: local_0002
Revises: local_0001
"""
from typing import Any

from alembic import op
import sqlalchemy as sa

revision = "local_0002"
down_revision = "local_0001"
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
    t = "local_product_rules"
    op.create_table(
        t, *_base(t),
        sa.Column("product_id", ID, nullable=False),
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("methods", sa.String(60), nullable=False),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.Column("valid_days", sa.Integer(), nullable=False),
        sa.Column("refund_unused", sa.Boolean(), nullable=False),
        sa.Column("ship_template_id", ID, nullable=True),
        sa.Column("weight_g", sa.Integer(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        _fk(t, "product_id", "products"),
        sa.UniqueConstraint("tenant_id", "product_id", name=op.f(f"uq_{t}_tenant_id_product_id")),
    )
    op.create_index(f"ix_{t}_tenant_id", t, ["tenant_id"])

    t = "local_order_fulfilments"
    op.create_table(
        t, *_base(t),
        sa.Column("order_id", ID, nullable=False),
        sa.Column("member_id", ID, nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("store_id", ID, nullable=False),
        sa.Column("pickup_at", TS, nullable=True),
        sa.Column("lat_e6", sa.Integer(), nullable=True),
        sa.Column("lng_e6", sa.Integer(), nullable=True),
        sa.Column("distance_m", sa.Integer(), nullable=True),
        sa.Column("fee_fen", sa.BigInteger(), nullable=False),
        sa.Column("slot_id", ID, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("rider", sa.String(40), nullable=False),
        sa.Column("dispatched_at", TS, nullable=True),
        sa.Column("delivered_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        _fk(t, "order_id", "orders"), _fk(t, "member_id", "members"), _fk(t, "store_id", "local_stores"),
        sa.UniqueConstraint("tenant_id", "order_id", name=op.f(f"uq_{t}_tenant_id_order_id")),
    )
    op.create_index(f"ix_{t}_tenant_id", t, ["tenant_id"])
    op.create_index("ix_local_fulfil_store", t, ["tenant_id", "store_id"])

    t = "local_tickets"
    op.create_table(
        t, *_base(t),
        sa.Column("code", sa.String(12), nullable=False),
        sa.Column("order_id", ID, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("member_id", ID, nullable=False),
        sa.Column("store_id", ID, nullable=False),
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("title", sa.String(120), nullable=False),
        sa.Column("uses_total", sa.Integer(), nullable=False),
        sa.Column("uses_left", sa.Integer(), nullable=False),
        sa.Column("value_fen", sa.BigInteger(), nullable=False),
        sa.Column("refund_unused", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("valid_until", TS, nullable=False),
        sa.Column("booking_id", ID, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("closed_at", TS, nullable=True),
        _fk(t, "order_id", "orders"), _fk(t, "member_id", "members"), _fk(t, "store_id", "local_stores"),
        sa.UniqueConstraint("tenant_id", "code", name=op.f(f"uq_{t}_tenant_id_code")),
        sa.UniqueConstraint("tenant_id", "order_id", "seq", name=op.f(f"uq_{t}_tenant_id_order_id_seq")),
        sa.CheckConstraint("uses_left >= 0 AND uses_left <= uses_total", name=op.f(f"ck_{t}_uses")),
    )
    op.create_index(f"ix_{t}_tenant_id", t, ["tenant_id"])
    op.create_index("ix_local_tickets_member", t, ["tenant_id", "member_id", "status"])
    op.create_index("ix_local_tickets_due", t, ["status", "valid_until"])

    t = "local_verifications"
    op.create_table(
        t, *_base(t),
        sa.Column("ticket_id", ID, nullable=False),
        sa.Column("store_id", ID, nullable=False),
        sa.Column("staff_member_id", ID, nullable=True),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.Column("uses_left", sa.Integer(), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("reversed_at", TS, nullable=True),
        sa.Column("reversed_by", sa.String(64), nullable=False),
        _fk(t, "ticket_id", "local_tickets"), _fk(t, "store_id", "local_stores"),
        sa.ForeignKeyConstraint(["staff_member_id"], ["members.id"], name=op.f(f"fk_{t}_staff_member_id_members")),
    )
    op.create_index(f"ix_{t}_tenant_id", t, ["tenant_id"])
    op.create_index(f"ix_{t}_ticket_id", t, ["ticket_id"])
    op.create_index("ix_local_verifications_tenant_at", t, ["tenant_id", "at"])

    t = "local_staff"
    op.create_table(
        t, *_base(t),
        sa.Column("member_id", ID, nullable=False),
        sa.Column("store_id", ID, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        _fk(t, "member_id", "members"), _fk(t, "store_id", "local_stores"),
        sa.UniqueConstraint("tenant_id", "member_id", "store_id", name=op.f(f"uq_{t}_tenant_id_member_id_store_id")),
    )
    op.create_index(f"ix_{t}_tenant_id", t, ["tenant_id"])

    t = "local_bind_codes"
    op.create_table(
        t, *_base(t),
        sa.Column("store_id", ID, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("hint", sa.String(8), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("used_at", TS, nullable=True),
        sa.Column("used_by", ID, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        _fk(t, "store_id", "local_stores"),
        sa.ForeignKeyConstraint(["used_by"], ["members.id"], name=op.f(f"fk_{t}_used_by_members")),
        sa.UniqueConstraint("tenant_id", "digest", name=op.f(f"uq_{t}_tenant_id_digest")),
    )
    op.create_index(f"ix_{t}_tenant_id", t, ["tenant_id"])

    t = "local_attempts"
    op.create_table(
        t, *_base(t),
        sa.Column("subject", sa.String(40), nullable=False),
        sa.Column("window", sa.BigInteger(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_reason", sa.String(40), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("tenant_id", "subject", "window", name=op.f(f"uq_{t}_tenant_id_subject_window")),
    )
    op.create_index(f"ix_{t}_tenant_id", t, ["tenant_id"])


def downgrade() -> None:
    for t in ("local_attempts", "local_bind_codes", "local_staff", "local_verifications", "local_tickets",
              "local_order_fulfilments", "local_product_rules"):
        op.drop_table(t)
