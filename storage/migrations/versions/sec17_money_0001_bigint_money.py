"""money: every fen column (and the points, growth and stock counters) 64-bit; a per-tenant
order cap (tenants.max_order_fen)

A merge revision: the columns live on the core's and the modules' branches, so it revises
every head at once. PostgreSQL changes each column's type to BIGINT (a table rewrite: run
it in a quiet hour on a large shop). SQLite stores every INTEGER in up to 8 bytes whatever
its declared type, so it needs no table rebuild there: only the new column is added.

Revision ID: sec17_money_0001
Revises: 0002, console_0001, groupbuy_0001, identity_0001, loyalty_0002, pay_0001, referral_0002
"""
from alembic import op
import sqlalchemy as sa

revision = "sec17_money_0001"
down_revision = ("0002", "console_0001", "groupbuy_0001", "identity_0001", "loyalty_0002", "pay_0001",
                 "referral_0002")
branch_labels = None
depends_on = None

#: table → columns widened to BIGINT (money in fen, points, growth, stock)
WIDENED: dict[str, tuple[str, ...]] = {
    # core
    "skus": ("price_fen", "stock"),
    "orders": ("goods_fen", "shipping_fen", "discount_fen", "total_fen", "paid_fen", "refunded_fen"),
    "order_lines": ("price_fen", "line_fen"),
    "payments": ("amount_fen",),
    "pay_notifications": ("amount_fen",),
    "refunds": ("amount_fen",),
    # loyalty
    "loyalty_levels": ("min_growth",),
    "loyalty_accounts": ("growth", "points"),
    "loyalty_points": ("delta",),
    "loyalty_coupon_templates": ("threshold_fen", "off_fen", "cap_fen"),
    "loyalty_flash_prices": ("price_fen",),
    "loyalty_full_reductions": ("threshold_fen", "off_fen"),
    "order_discounts": ("points_used", "points_fen", "discount_fen"),
    "loyalty_order_state": ("paid_fen", "earned_points", "earned_growth", "refunded_fen", "returned_points",
                            "clawed_points", "clawed_growth"),
    # referral
    "referral_settings": ("min_withdraw_fen", "daily_limit_fen"),
    "referral_distributors": ("frozen_fen", "available_fen"),
    "referral_commissions": ("base_fen", "paid_fen", "amount_fen", "refunded_fen", "reversed_fen"),
    "referral_ledger": ("amount_fen",),
    "referral_withdrawals": ("amount_fen",),
    # groupbuy
    "groupbuy_campaigns": ("leader_discount_fen",),
    "groupbuy_skus": ("group_price_fen",),
}

DEFAULT_MAX_ORDER_FEN = 100_000_000   # ¥1,000,000 (social_mall.orders.rules.DEFAULT_MAX_ORDER_FEN)


def _retype(to: type[sa.types.TypeEngine[int]], was: type[sa.types.TypeEngine[int]]) -> None:
    if op.get_bind().dialect.name == "sqlite":
        return   # INTEGER affinity is 64-bit already; a batch rebuild would buy nothing
    for table, columns in WIDENED.items():
        for column in columns:
            op.alter_column(table, column, type_=to(), existing_type=was())


def upgrade() -> None:
    _retype(sa.BigInteger, sa.Integer)
    # A constant default: a plain ADD COLUMN on both backends (no SQLite table rebuild).
    op.add_column("tenants", sa.Column("max_order_fen", sa.BigInteger(), nullable=False,
                                       server_default=str(DEFAULT_MAX_ORDER_FEN)))


def downgrade() -> None:
    with op.batch_alter_table("tenants") as batch_op:
        batch_op.drop_column("max_order_fen")
    _retype(sa.Integer, sa.BigInteger)   # fails on PostgreSQL if a value no longer fits: on purpose
