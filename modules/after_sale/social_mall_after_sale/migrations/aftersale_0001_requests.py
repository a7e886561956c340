"""after_sale: requests, their lines, per-order-line unit claims, photos, timeline, settings

Revision ID: aftersale_0001
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa

revision = "aftersale_0001"
down_revision = "0002"
branch_labels = ("after_sale",)
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def _base(t: str) -> list:  # type: ignore[type-arg]
    return [
        sa.Column("id", ID, nullable=False),
        sa.Column("tenant_id", ID, nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f(f"fk_{t}_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{t}")),
    ]


def upgrade() -> None:
    t = "aftersale_requests"
    op.create_table(
        t, *_base(t),
        sa.Column("order_id", ID, nullable=False),
        sa.Column("order_no", sa.String(32), nullable=False),
        sa.Column("member_id", ID, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason_code", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(40), nullable=False),
        sa.Column("refund_fen", sa.BigInteger(), nullable=False),
        sa.Column("out_refund_no", sa.String(64), nullable=False),
        sa.Column("reject_reason", sa.String(80), nullable=False),
        sa.Column("return_tracking", sa.String(40), nullable=False),
        sa.Column("resellable", sa.Boolean(), nullable=False),
        sa.Column("deadline_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f(f"fk_{t}_order_id_orders")),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], name=op.f(f"fk_{t}_member_id_members")),
        sa.CheckConstraint("refund_fen >= 0", name=op.f("ck_aftersale_requests_refund")),
    )
    op.create_index(f"ix_{t}_tenant_id", t, ["tenant_id"])
    op.create_index("ix_aftersale_requests_due", t, ["status", "deadline_at"])
    op.create_index("ix_aftersale_requests_member", t, ["tenant_id", "member_id"])
    op.create_index("ix_aftersale_requests_order", t, ["tenant_id", "order_id"])

    t = "aftersale_lines"
    op.create_table(
        t, *_base(t),
        sa.Column("request_id", ID, nullable=False),
        sa.Column("sku_id", sa.BigInteger(), nullable=False),
        sa.Column("title", sa.String(120), nullable=False),
        sa.Column("spec", sa.String(60), nullable=False),
        sa.Column("qty", sa.Integer(), nullable=False),
        sa.Column("refund_fen", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["request_id"], ["aftersale_requests.id"],
                                name=op.f(f"fk_{t}_request_id_aftersale_requests")),
        sa.CheckConstraint("qty > 0", name=op.f("ck_aftersale_lines_qty")),
    )
    op.create_index(f"ix_{t}_tenant_id", t, ["tenant_id"])
    op.create_index(f"ix_{t}_request_id", t, ["request_id"])

    t = "aftersale_units"
    op.create_table(
        t, *_base(t),
        sa.Column("order_id", ID, nullable=False),
        sa.Column("sku_id", sa.BigInteger(), nullable=False),
        sa.Column("qty", sa.Integer(), nullable=False),
        sa.Column("claimed", sa.Integer(), nullable=False),
        sa.Column("refunded_qty", sa.Integer(), nullable=False),
        sa.Column("refunded_fen", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f(f"fk_{t}_order_id_orders")),
        sa.UniqueConstraint("tenant_id", "order_id", "sku_id", name=op.f(f"uq_{t}_tenant_id_order_id_sku_id")),
        sa.CheckConstraint("claimed >= 0 AND claimed <= qty", name=op.f("ck_aftersale_units_claimed")),
        sa.CheckConstraint("refunded_qty >= 0 AND refunded_qty <= qty", name=op.f("ck_aftersale_units_refunded")),
    )
    op.create_index(f"ix_{t}_tenant_id", t, ["tenant_id"])

    t = "aftersale_photos"
    op.create_table(
        t, *_base(t),
        sa.Column("request_id", ID, nullable=False),
        sa.Column("media_id", sa.String(128), nullable=False),
        sa.Column("pic_url", sa.String(512), nullable=False),
        sa.Column("content_type", sa.String(40), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=True),
        sa.Column("fetched_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["request_id"], ["aftersale_requests.id"],
                                name=op.f(f"fk_{t}_request_id_aftersale_requests")),
    )
    op.create_index(f"ix_{t}_tenant_id", t, ["tenant_id"])
    op.create_index(f"ix_{t}_request_id", t, ["request_id"])

    t = "aftersale_log"
    op.create_table(
        t, *_base(t),
        sa.Column("request_id", ID, nullable=False),
        sa.Column("actor", sa.String(80), nullable=False),
        sa.Column("src", sa.String(16), nullable=False),
        sa.Column("dst", sa.String(16), nullable=False),
        sa.Column("note", sa.String(120), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.ForeignKeyConstraint(["request_id"], ["aftersale_requests.id"],
                                name=op.f(f"fk_{t}_request_id_aftersale_requests")),
    )
    op.create_index(f"ix_{t}_tenant_id", t, ["tenant_id"])
    op.create_index(f"ix_{t}_request_id", t, ["request_id"])

    t = "aftersale_settings"
    op.create_table(
        t,
        sa.Column("id", ID, nullable=False),
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("answer_days", sa.Integer(), nullable=False),
        sa.Column("return_days", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f(f"fk_{t}_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{t}")),
        sa.UniqueConstraint("tenant_id", name=op.f(f"uq_{t}_tenant_id")),
    )


def downgrade() -> None:
    for t in ("aftersale_settings", "aftersale_log", "aftersale_photos", "aftersale_units", "aftersale_lines",
              "aftersale_requests"):
        op.drop_table(t)
