"""referral: settings, levels, product rates, distributors, bindings, commissions,
ledger, withdrawals

Revision ID: referral_0001
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa

revision = "referral_0001"
down_revision = "0001"
branch_labels = ("referral",)
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


def upgrade() -> None:
    t = "referral_settings"
    op.create_table(
        t, _id(), _tenant(),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("auto_approve", sa.Boolean(), nullable=False),
        sa.Column("binding_mode", sa.String(length=8), nullable=False),
        sa.Column("lifetime_days", sa.Integer(), nullable=False),
        sa.Column("freeze_days", sa.Integer(), nullable=False),
        sa.Column("level1_bp", sa.Integer(), nullable=False),
        sa.Column("level2_bp", sa.Integer(), nullable=False),
        sa.Column("min_withdraw_fen", sa.Integer(), nullable=False),
        sa.Column("daily_limit_fen", sa.Integer(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        _fk(t, "tenant_id", "tenants"), _pk(t),
        sa.UniqueConstraint("tenant_id", name=op.f(f"uq_{t}_tenant_id")),
    )

    t = "referral_levels"
    op.create_table(
        t, _id(), _tenant(),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("level1_bp", sa.Integer(), nullable=False),
        sa.Column("level2_bp", sa.Integer(), nullable=False),
        sa.Column("sort", sa.Integer(), nullable=False),
        _fk(t, "tenant_id", "tenants"), _pk(t),
    )
    op.create_index(op.f(f"ix_{t}_tenant_id"), t, ["tenant_id"])

    t = "referral_product_rates"
    op.create_table(
        t, _id(), _tenant(),
        sa.Column("product_id", ID, nullable=False),
        sa.Column("level1_bp", sa.Integer(), nullable=False),
        sa.Column("level2_bp", sa.Integer(), nullable=False),
        _fk(t, "tenant_id", "tenants"), _fk(t, "product_id", "products"), _pk(t),
        sa.UniqueConstraint("tenant_id", "product_id", name=op.f(f"uq_{t}_tenant_id_product_id")),
    )
    op.create_index(op.f(f"ix_{t}_tenant_id"), t, ["tenant_id"])

    t = "referral_distributors"
    op.create_table(
        t, _id(), _tenant(),
        sa.Column("member_id", ID, nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("level_id", ID, nullable=True),
        sa.Column("frozen_fen", sa.Integer(), nullable=False),
        sa.Column("available_fen", sa.Integer(), nullable=False),
        sa.Column("qr_url", sa.String(length=200), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("decided_at", TS, nullable=True),
        _fk(t, "tenant_id", "tenants"), _fk(t, "member_id", "members"),
        _fk(t, "level_id", "referral_levels"), _pk(t),
        sa.UniqueConstraint("tenant_id", "member_id", name=op.f(f"uq_{t}_tenant_id_member_id")),
        sa.UniqueConstraint("tenant_id", "code", name=op.f(f"uq_{t}_tenant_id_code")),
    )
    op.create_index(op.f(f"ix_{t}_tenant_id"), t, ["tenant_id"])

    t = "referral_bindings"
    op.create_table(
        t, _id(), _tenant(),
        sa.Column("member_id", ID, nullable=False),
        sa.Column("distributor_member_id", ID, nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("bound_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=True),
        _fk(t, "tenant_id", "tenants"), _fk(t, "member_id", "members"),
        _fk(t, "distributor_member_id", "members"), _pk(t),
        sa.UniqueConstraint("tenant_id", "member_id", name=op.f(f"uq_{t}_tenant_id_member_id")),
    )
    op.create_index(op.f(f"ix_{t}_tenant_id"), t, ["tenant_id"])
    op.create_index(op.f(f"ix_{t}_distributor_member_id"), t, ["distributor_member_id"])

    t = "referral_commissions"
    op.create_table(
        t, _id(), _tenant(),
        sa.Column("order_id", ID, nullable=False),
        sa.Column("order_no", sa.String(length=32), nullable=False),
        sa.Column("buyer_member_id", ID, nullable=False),
        sa.Column("distributor_id", ID, nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("base_fen", sa.Integer(), nullable=False),
        sa.Column("paid_fen", sa.Integer(), nullable=False),
        sa.Column("amount_fen", sa.Integer(), nullable=False),
        sa.Column("refunded_fen", sa.Integer(), nullable=False),
        sa.Column("reversed_fen", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("unfreeze_at", TS, nullable=True),
        sa.Column("unfrozen_at", TS, nullable=True),
        _fk(t, "tenant_id", "tenants"), _fk(t, "order_id", "orders"),
        _fk(t, "buyer_member_id", "members"), _fk(t, "distributor_id", "referral_distributors"), _pk(t),
        sa.UniqueConstraint("tenant_id", "order_id", "level", name=op.f(f"uq_{t}_tenant_id_order_id_level")),
    )
    op.create_index(op.f(f"ix_{t}_tenant_id"), t, ["tenant_id"])
    op.create_index(op.f(f"ix_{t}_distributor_id"), t, ["distributor_id"])
    op.create_index("ix_referral_commissions_due", t, ["status", "unfreeze_at"])

    t = "referral_ledger"
    op.create_table(
        t, _id(), _tenant(),
        sa.Column("distributor_id", ID, nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("bucket", sa.String(length=10), nullable=False),
        sa.Column("amount_fen", sa.Integer(), nullable=False),
        sa.Column("ref", sa.String(length=64), nullable=False),
        sa.Column("commission_id", sa.Integer(), nullable=True),
        sa.Column("withdrawal_id", sa.Integer(), nullable=True),
        sa.Column("order_no", sa.String(length=32), nullable=False),
        sa.Column("note", sa.String(length=80), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        _fk(t, "tenant_id", "tenants"), _fk(t, "distributor_id", "referral_distributors"), _pk(t),
        sa.UniqueConstraint("tenant_id", "ref", name=op.f(f"uq_{t}_tenant_id_ref")),
    )
    op.create_index(op.f(f"ix_{t}_tenant_id"), t, ["tenant_id"])
    op.create_index(op.f(f"ix_{t}_distributor_id"), t, ["distributor_id"])

    t = "referral_withdrawals"
    op.create_table(
        t, _id(), _tenant(),
        sa.Column("distributor_id", ID, nullable=False),
        sa.Column("member_id", ID, nullable=False),
        sa.Column("amount_fen", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("out_bill_no", sa.String(length=32), nullable=False),
        sa.Column("transfer_id", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=80), nullable=False),
        sa.Column("requested_at", TS, nullable=False),
        sa.Column("decided_at", TS, nullable=True),
        sa.Column("settled_at", TS, nullable=True),
        _fk(t, "tenant_id", "tenants"), _fk(t, "distributor_id", "referral_distributors"),
        _fk(t, "member_id", "members"), _pk(t),
        sa.UniqueConstraint("out_bill_no", name=op.f(f"uq_{t}_out_bill_no")),
    )
    op.create_index(op.f(f"ix_{t}_tenant_id"), t, ["tenant_id"])
    op.create_index(op.f(f"ix_{t}_distributor_id"), t, ["distributor_id"])
    op.create_index("ix_referral_withdrawals_day", t, ["tenant_id", "distributor_id", "requested_at"])


def downgrade() -> None:
    for t in ("referral_withdrawals", "referral_ledger", "referral_commissions", "referral_bindings",
              "referral_distributors", "referral_product_rates", "referral_levels", "referral_settings"):
        op.drop_table(t)
