"""bargain: campaigns, bargains, helps and helps per friend and day

Revision ID: bargain_0001
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa

revision = "bargain_0001"
down_revision = "0002"
branch_labels = ("bargain",)
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def _fk(t: str, col: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([col], [f"{target}.id"], name=op.f(f"fk_{t}_{col}_{target}"))


def upgrade() -> None:
    t = "bargain_campaigns"
    op.create_table(
        t,
        sa.Column("id", ID, nullable=False),
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("product_id", ID, nullable=False),
        sa.Column("sku_id", ID, nullable=False),
        sa.Column("title", sa.String(80), nullable=False),
        sa.Column("floor_fen", sa.BigInteger(), nullable=False),
        sa.Column("helps_needed", sa.Integer(), nullable=False),
        sa.Column("min_cut_fen", sa.BigInteger(), nullable=False),
        sa.Column("hours", sa.Integer(), nullable=False),
        sa.Column("stock", sa.Integer(), nullable=False),
        sa.Column("daily_helps", sa.Integer(), nullable=False),
        sa.Column("helper_min_age_hours", sa.Integer(), nullable=False),
        sa.Column("starts_at", TS, nullable=False),
        sa.Column("ends_at", TS, nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        _fk(t, "tenant_id", "tenants"), _fk(t, "product_id", "products"), _fk(t, "sku_id", "skus"),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{t}")),
        sa.CheckConstraint("stock >= 0", name=op.f(f"ck_{t}_stock_not_negative")),
        sa.CheckConstraint("helps_needed >= 1 AND floor_fen >= 1 AND min_cut_fen >= 1",
                           name=op.f(f"ck_{t}_terms_positive")),
    )
    op.create_index(f"ix_{t}_tenant_id", t, ["tenant_id"])
    t = "bargains"
    op.create_table(
        t,
        sa.Column("id", ID, nullable=False),
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("campaign_id", ID, nullable=False),
        sa.Column("member_id", ID, nullable=False),
        sa.Column("code", sa.String(16), nullable=False),
        sa.Column("sku_id", ID, nullable=False),
        sa.Column("start_fen", sa.BigInteger(), nullable=False),
        sa.Column("floor_fen", sa.BigInteger(), nullable=False),
        sa.Column("price_fen", sa.BigInteger(), nullable=False),
        sa.Column("helps", sa.Integer(), nullable=False),
        sa.Column("helps_needed", sa.Integer(), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("cuts", sa.Text(), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("order_id", ID, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        _fk(t, "tenant_id", "tenants"), _fk(t, "campaign_id", "bargain_campaigns"), _fk(t, "member_id", "members"),
        _fk(t, "sku_id", "skus"), _fk(t, "order_id", "orders"),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{t}")),
        sa.UniqueConstraint("tenant_id", "code", name=op.f(f"uq_{t}_tenant_id_code")),
        sa.CheckConstraint("price_fen >= floor_fen AND helps >= 0 AND helps <= helps_needed",
                           name=op.f(f"ck_{t}_within_terms")),
    )
    op.create_index(f"ix_{t}_tenant_id", t, ["tenant_id"])
    op.create_index(f"ix_{t}_campaign_id", t, ["campaign_id"])
    op.create_index(f"ix_{t}_member_id", t, ["member_id"])
    op.create_index("ix_bargains_due", t, ["status", "expires_at"])
    op.create_index("ix_bargains_order", t, ["tenant_id", "order_id"])
    t = "bargain_helps"
    op.create_table(
        t,
        sa.Column("id", ID, nullable=False),
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("bargain_id", ID, nullable=False),
        sa.Column("helper_member_id", ID, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("cut_fen", sa.BigInteger(), nullable=False),
        sa.Column("price_after_fen", sa.BigInteger(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        _fk(t, "tenant_id", "tenants"), _fk(t, "bargain_id", "bargains"), _fk(t, "helper_member_id", "members"),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{t}")),
        sa.UniqueConstraint("bargain_id", "helper_member_id", name=op.f(f"uq_{t}_bargain_id_helper_member_id")),
        sa.UniqueConstraint("bargain_id", "seq", name=op.f(f"uq_{t}_bargain_id_seq")),
    )
    op.create_index(f"ix_{t}_tenant_id", t, ["tenant_id"])
    op.create_index(f"ix_{t}_bargain_id", t, ["bargain_id"])
    t = "bargain_help_days"
    op.create_table(
        t,
        sa.Column("id", ID, nullable=False),
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("member_id", ID, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        _fk(t, "tenant_id", "tenants"), _fk(t, "member_id", "members"),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{t}")),
        sa.UniqueConstraint("tenant_id", "member_id", "day", name=op.f(f"uq_{t}_tenant_id_member_id_day")),
    )
    op.create_index(f"ix_{t}_tenant_id", t, ["tenant_id"])


def downgrade() -> None:
    op.drop_table("bargain_help_days")
    op.drop_table("bargain_helps")
    op.drop_table("bargains")
    op.drop_table("bargain_campaigns")
