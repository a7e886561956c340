"""groupbuy: campaigns, group prices, teams, seats, WeCom settings

Revision ID: groupbuy_0001
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa

revision = "groupbuy_0001"
down_revision = "0001"
branch_labels = ("groupbuy",)
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def _id() -> sa.Column:
    return sa.Column("id", ID, nullable=False)


def _tenant() -> sa.Column:
    return sa.Column("tenant_id", ID, nullable=False)


def _fk(table: str, col: str, ref: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([col], [f"{ref}.id"], name=op.f(f"fk_{table}_{col}_{ref}"))


def _pk(table: str) -> sa.PrimaryKeyConstraint:
    return sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}"))


def _ix(table: str, *cols: str) -> None:
    op.create_index(op.f(f"ix_{table}_{cols[0]}"), table, list(cols), unique=False)


def upgrade() -> None:
    t = "groupbuy_campaigns"
    op.create_table(
        t, _id(), _tenant(),
        sa.Column("product_id", ID, nullable=False),
        sa.Column("title", sa.String(length=80), nullable=False),
        sa.Column("team_size", sa.Integer(), nullable=False),
        sa.Column("lifetime_hours", sa.Integer(), nullable=False),
        sa.Column("starts_at", TS, nullable=False),
        sa.Column("ends_at", TS, nullable=False),
        sa.Column("max_teams_per_member", sa.Integer(), nullable=False),
        sa.Column("max_qty", sa.Integer(), nullable=False),
        sa.Column("leader_discount_fen", sa.Integer(), nullable=False),
        sa.Column("simulated", sa.Boolean(), nullable=False),
        sa.Column("max_extend_hours", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        _fk(t, "tenant_id", "tenants"), _fk(t, "product_id", "products"), _pk(t),
    )
    _ix(t, "tenant_id")

    t = "groupbuy_skus"
    op.create_table(
        t, _id(), _tenant(),
        sa.Column("campaign_id", ID, nullable=False),
        sa.Column("sku_id", ID, nullable=False),
        sa.Column("group_price_fen", sa.Integer(), nullable=False),
        _fk(t, "tenant_id", "tenants"), _fk(t, "campaign_id", "groupbuy_campaigns"),
        _fk(t, "sku_id", "skus"), _pk(t),
        sa.UniqueConstraint("campaign_id", "sku_id", name=op.f(f"uq_{t}_campaign_id_sku_id")),
    )
    _ix(t, "tenant_id")
    _ix(t, "campaign_id")

    t = "groupbuy_teams"
    op.create_table(
        t, _id(), _tenant(),
        sa.Column("campaign_id", ID, nullable=False),
        sa.Column("leader_member_id", ID, nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("held", sa.Integer(), nullable=False),
        sa.Column("paid", sa.Integer(), nullable=False),
        sa.Column("virtual", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("chat_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("closed_at", TS, nullable=True),
        _fk(t, "tenant_id", "tenants"), _fk(t, "campaign_id", "groupbuy_campaigns"),
        _fk(t, "leader_member_id", "members"), _pk(t),
        sa.CheckConstraint("held >= 0 AND held <= size", name=op.f(f"ck_{t}_held_within_size")),
    )
    _ix(t, "tenant_id")
    _ix(t, "campaign_id")
    _ix(t, "leader_member_id")
    op.create_index("ix_groupbuy_teams_status_expires", t, ["status", "expires_at"], unique=False)

    t = "groupbuy_seats"
    op.create_table(
        t, _id(), _tenant(),
        sa.Column("team_id", ID, nullable=False),
        sa.Column("campaign_id", ID, nullable=False),
        sa.Column("member_id", ID, nullable=False),
        sa.Column("order_id", ID, nullable=True),
        sa.Column("sku_id", ID, nullable=False),
        sa.Column("qty", sa.Integer(), nullable=False),
        sa.Column("leader", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("joined_at", TS, nullable=False),
        sa.Column("paid_at", TS, nullable=True),
        _fk(t, "tenant_id", "tenants"), _fk(t, "team_id", "groupbuy_teams"),
        _fk(t, "campaign_id", "groupbuy_campaigns"), _fk(t, "member_id", "members"),
        _fk(t, "order_id", "orders"), _fk(t, "sku_id", "skus"), _pk(t),
        sa.UniqueConstraint("order_id", name=op.f(f"uq_{t}_order_id")),
    )
    _ix(t, "tenant_id")
    _ix(t, "team_id")
    _ix(t, "member_id")
    op.create_index(
        "uq_groupbuy_seats_team_member_active", t, ["team_id", "member_id"], unique=True,
        postgresql_where=sa.text("status <> 'released'"), sqlite_where=sa.text("status <> 'released'"),
    )

    t = "groupbuy_wecom"
    op.create_table(
        t, _id(),
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("aes_key", sa.String(length=64), nullable=False),
        sa.Column("receive_id", sa.String(length=64), nullable=False),
        sa.Column("webhook_url", sa.String(length=300), nullable=False),
        sa.Column("bot_name", sa.String(length=40), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        _fk(t, "tenant_id", "tenants"), _pk(t),
        sa.UniqueConstraint("tenant_id", name=op.f(f"uq_{t}_tenant_id")),
    )


def downgrade() -> None:
    op.drop_table("groupbuy_wecom")
    op.drop_index("uq_groupbuy_seats_team_member_active", table_name="groupbuy_seats")
    op.drop_table("groupbuy_seats")
    op.drop_table("groupbuy_teams")
    op.drop_table("groupbuy_skus")
    op.drop_table("groupbuy_campaigns")
