"""console: per-admin API tokens (hashed at rest)

Revision ID: console_0001
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa

revision = "console_0001"
down_revision = "0001"
branch_labels = ("console",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "console_api_tokens",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("tenant_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("admin_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("hint", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"],
                                name=op.f("fk_console_api_tokens_tenant_id_tenants")),
        sa.ForeignKeyConstraint(["admin_id"], ["admins.id"],
                                name=op.f("fk_console_api_tokens_admin_id_admins")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_console_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_console_api_tokens_token_hash")),
    )
    op.create_index(op.f("ix_console_api_tokens_tenant_id"), "console_api_tokens", ["tenant_id"])
    op.create_index(op.f("ix_console_api_tokens_admin_id"), "console_api_tokens", ["admin_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_console_api_tokens_admin_id"), table_name="console_api_tokens")
    op.drop_index(op.f("ix_console_api_tokens_tenant_id"), table_name="console_api_tokens")
    op.drop_table("console_api_tokens")
