"""pay: tenant WeChat Pay accounts, active-query checks, reconciliation reports

Revision ID: pay_0001
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa

revision = "pay_0001"
down_revision = "0001"
branch_labels = ("pay",)
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "tenant_pay_accounts",
        sa.Column("id", _ID, nullable=False),
        sa.Column("tenant_id", _ID, nullable=False),
        sa.Column("api_version", sa.String(length=4), nullable=False),
        sa.Column("mch_id", sa.String(length=32), nullable=False),
        sa.Column("app_id", sa.String(length=64), nullable=False),
        sa.Column("apiv3_key", sa.String(length=64), nullable=False),
        sa.Column("apiv2_key", sa.String(length=64), nullable=False),
        sa.Column("v2_sign_type", sa.String(length=16), nullable=False),
        sa.Column("private_key_path", sa.String(length=255), nullable=False),
        sa.Column("serial_no", sa.String(length=64), nullable=False),
        sa.Column("platform_mode", sa.String(length=16), nullable=False),
        sa.Column("platform_key_path", sa.String(length=255), nullable=False),
        sa.Column("platform_key_id", sa.String(length=64), nullable=False),
        sa.Column("base_url", sa.String(length=255), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"],
                                name=op.f("fk_tenant_pay_accounts_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenant_pay_accounts")),
    )
    op.create_index(op.f("ix_tenant_pay_accounts_tenant_id"), "tenant_pay_accounts", ["tenant_id"],
                    unique=True)
    op.create_table(
        "pay_trade_checks",
        sa.Column("id", _ID, nullable=False),
        sa.Column("tenant_id", _ID, nullable=False),
        sa.Column("out_trade_no", sa.String(length=32), nullable=False),
        sa.Column("trade_state", sa.String(length=20), nullable=False),
        sa.Column("checks", sa.Integer(), nullable=False),
        sa.Column("final", sa.Boolean(), nullable=False),
        sa.Column("last_checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"],
                                name=op.f("fk_pay_trade_checks_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pay_trade_checks")),
        sa.UniqueConstraint("out_trade_no", name=op.f("uq_pay_trade_checks_out_trade_no")),
    )
    op.create_index(op.f("ix_pay_trade_checks_tenant_id"), "pay_trade_checks", ["tenant_id"])
    op.create_table(
        "pay_reconciliations",
        sa.Column("id", _ID, nullable=False),
        sa.Column("tenant_id", _ID, nullable=False),
        sa.Column("bill_date", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("checked", sa.Integer(), nullable=False),
        sa.Column("mismatches", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"],
                                name=op.f("fk_pay_reconciliations_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pay_reconciliations")),
        sa.UniqueConstraint("tenant_id", "bill_date", name="uq_pay_reconciliations_day"),
    )
    op.create_index(op.f("ix_pay_reconciliations_tenant_id"), "pay_reconciliations", ["tenant_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_pay_reconciliations_tenant_id"), table_name="pay_reconciliations")
    op.drop_table("pay_reconciliations")
    op.drop_index(op.f("ix_pay_trade_checks_tenant_id"), table_name="pay_trade_checks")
    op.drop_table("pay_trade_checks")
    op.drop_index(op.f("ix_tenant_pay_accounts_tenant_id"), table_name="tenant_pay_accounts")
    op.drop_table("tenant_pay_accounts")
