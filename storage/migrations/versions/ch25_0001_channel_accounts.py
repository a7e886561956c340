"""channel accounts per tenant; several pay merchants; orders remember both

Issue 25: a tenant owns any number of channel accounts (official accounts, mini-programs,
WeCom apps and robots), each linked to a pay merchant; a tenant may have several merchants
(one default). The tenant's own official-account columns are copied into its primary
account row (code "main").

Revision ID: ch25_0001
Revises: h23_0001
"""
from alembic import op
import sqlalchemy as sa

revision = "ch25_0001"
down_revision = "h23_0001"  # one core head
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "channel_accounts",
        sa.Column("id", _ID, nullable=False),
        sa.Column("tenant_id", _ID, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("subtype", sa.String(16), nullable=False, server_default=""),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("name", sa.String(64), nullable=False, server_default=""),
        sa.Column("app_id", sa.String(64), nullable=False, server_default=""),
        sa.Column("app_secret", sa.String(128), nullable=False, server_default=""),
        sa.Column("token", sa.String(64), nullable=False, server_default=""),
        sa.Column("aes_key", sa.String(64), nullable=False, server_default=""),
        sa.Column("agent_id", sa.String(32), nullable=False, server_default=""),
        sa.Column("webhook_key", sa.String(128), nullable=False, server_default=""),
        sa.Column("pay_account_id", sa.BigInteger(), nullable=True),
        sa.Column("menu", sa.Text(), nullable=False, server_default=""),
        sa.Column("menu_published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("is_primary", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_channel_accounts_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channel_accounts")),
        sa.UniqueConstraint("tenant_id", "code", name=op.f("uq_channel_accounts_tenant_id_code")),
    )
    op.create_index(op.f("ix_channel_accounts_tenant_id"), "channel_accounts", ["tenant_id"])
    op.create_index("ix_channel_accounts_app_id", "channel_accounts", ["app_id"])
    # the tenant's own official account becomes its primary channel account
    op.execute(
        "INSERT INTO channel_accounts (tenant_id, kind, subtype, code, name, app_id, app_secret, token, aes_key,"
        " agent_id, webhook_key, menu, is_primary, enabled, created_at, updated_at)"
        " SELECT id, 'mp', 'service', 'main', name, wechat_app_id, wechat_app_secret, wechat_token, wechat_aes_key,"
        " '', '', '', true, true, created_at, created_at FROM tenants"
    )
    # several merchants per tenant, one default (every existing one is its tenant's only)
    op.drop_index(op.f("ix_tenant_pay_accounts_tenant_id"), table_name="tenant_pay_accounts")
    op.create_index(op.f("ix_tenant_pay_accounts_tenant_id"), "tenant_pay_accounts", ["tenant_id"])
    op.add_column("tenant_pay_accounts", sa.Column("name", sa.String(40), nullable=False, server_default=""))
    op.add_column("tenant_pay_accounts", sa.Column("is_default", sa.Boolean(), nullable=False,
                                                   server_default=sa.true()))
    op.add_column("orders", sa.Column("channel_account_id", sa.BigInteger(), nullable=True))
    op.add_column("orders", sa.Column("pay_account_id", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch_op:
        batch_op.drop_column("pay_account_id")
        batch_op.drop_column("channel_account_id")
    with op.batch_alter_table("tenant_pay_accounts") as batch_op:
        batch_op.drop_column("is_default")
        batch_op.drop_column("name")
    op.drop_index(op.f("ix_tenant_pay_accounts_tenant_id"), table_name="tenant_pay_accounts")
    op.create_index(op.f("ix_tenant_pay_accounts_tenant_id"), "tenant_pay_accounts", ["tenant_id"], unique=True)
    op.drop_table("channel_accounts")
