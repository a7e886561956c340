"""seckill: sessions, items, per-member claims, orders, reminders, settings

Revision ID: seckill_0001
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa

revision = "seckill_0001"
down_revision = "0002"
branch_labels = ("seckill",)
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def _base(t: str) -> list[sa.schema.SchemaItem]:
    return [
        sa.Column("id", ID, nullable=False),
        sa.Column("tenant_id", ID, nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f(f"fk_{t}_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{t}")),
    ]


def upgrade() -> None:
    t = "seckill_sessions"
    op.create_table(
        t, *_base(t),
        sa.Column("title", sa.String(40), nullable=False),
        sa.Column("starts_at", TS, nullable=False),
        sa.Column("ends_at", TS, nullable=False),
        sa.Column("pay_minutes", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.CheckConstraint("ends_at > starts_at", name="ck_seckill_sessions_times"),
        sa.CheckConstraint("pay_minutes BETWEEN 1 AND 30", name="ck_seckill_sessions_pay_minutes"),
    )
    op.create_index(f"ix_{t}_tenant_id", t, ["tenant_id"])
    op.create_index(f"ix_{t}_starts_at", t, ["starts_at"])

    t = "seckill_items"
    op.create_table(
        t, *_base(t),
        sa.Column("session_id", ID, nullable=False),
        sa.Column("product_id", ID, nullable=False),
        sa.Column("sku_id", ID, nullable=False),
        sa.Column("price_fen", sa.BigInteger(), nullable=False),
        sa.Column("stock", sa.Integer(), nullable=False),
        sa.Column("sold", sa.Integer(), nullable=False),
        sa.Column("limit_per_member", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["seckill_sessions.id"], name=op.f(f"fk_{t}_session_id_seckill_sessions")),
        sa.ForeignKeyConstraint(["product_id"], ["products.id"], name=op.f(f"fk_{t}_product_id_products")),
        sa.ForeignKeyConstraint(["sku_id"], ["skus.id"], name=op.f(f"fk_{t}_sku_id_skus")),
        sa.UniqueConstraint("session_id", "sku_id", name=op.f(f"uq_{t}_session_id_sku_id")),
        sa.CheckConstraint("price_fen > 0", name="ck_seckill_items_price"),
        sa.CheckConstraint("sold >= 0 AND sold <= stock", name="ck_seckill_items_sold"),
        sa.CheckConstraint("limit_per_member >= 1", name="ck_seckill_items_limit"),
    )
    op.create_index(f"ix_{t}_tenant_id", t, ["tenant_id"])
    op.create_index(f"ix_{t}_session_id", t, ["session_id"])

    t = "seckill_claims"
    op.create_table(
        t, *_base(t),
        sa.Column("item_id", ID, nullable=False),
        sa.Column("member_id", ID, nullable=False),
        sa.Column("qty", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["seckill_items.id"], name=op.f(f"fk_{t}_item_id_seckill_items")),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], name=op.f(f"fk_{t}_member_id_members")),
        sa.UniqueConstraint("item_id", "member_id", name=op.f(f"uq_{t}_item_id_member_id")),
        sa.CheckConstraint("qty >= 0", name="ck_seckill_claims_qty"),
    )
    op.create_index(f"ix_{t}_tenant_id", t, ["tenant_id"])

    t = "seckill_orders"
    op.create_table(
        t, *_base(t),
        sa.Column("item_id", ID, nullable=False),
        sa.Column("member_id", ID, nullable=False),
        sa.Column("order_id", ID, nullable=False),
        sa.Column("qty", sa.Integer(), nullable=False),
        sa.Column("token", sa.String(32), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("pay_by", TS, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["seckill_items.id"], name=op.f(f"fk_{t}_item_id_seckill_items")),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], name=op.f(f"fk_{t}_member_id_members")),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f(f"fk_{t}_order_id_orders")),
        sa.UniqueConstraint("order_id", name=op.f(f"uq_{t}_order_id")),
    )
    op.create_index(f"ix_{t}_tenant_id", t, ["tenant_id"])
    op.create_index(f"ix_{t}_item_id", t, ["item_id"])
    op.create_index(f"ix_{t}_status", t, ["status"])
    op.create_index(f"ix_{t}_pay_by", t, ["pay_by"])

    t = "seckill_reminders"
    op.create_table(
        t, *_base(t),
        sa.Column("session_id", ID, nullable=False),
        sa.Column("member_id", ID, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["seckill_sessions.id"], name=op.f(f"fk_{t}_session_id_seckill_sessions")),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], name=op.f(f"fk_{t}_member_id_members")),
        sa.UniqueConstraint("session_id", "member_id", name=op.f(f"uq_{t}_session_id_member_id")),
    )
    op.create_index(f"ix_{t}_tenant_id", t, ["tenant_id"])
    op.create_index(f"ix_{t}_session_id", t, ["session_id"])

    t = "seckill_settings"
    op.create_table(
        t,
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("new_member_minutes", sa.Integer(), nullable=False),
        sa.Column("attempts_per_minute", sa.Integer(), nullable=False),
        sa.Column("announce", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f(f"fk_{t}_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f(f"pk_{t}")),
    )


def downgrade() -> None:
    for t in ("seckill_settings", "seckill_reminders", "seckill_orders", "seckill_claims", "seckill_items",
              "seckill_sessions"):
        op.drop_table(t)
