"""insights: 订阅通知 — members' consents per template, and the template in the settings

Revision ID: insights_0010
Revises: insights_0002
"""
from alembic import op
import sqlalchemy as sa

revision = "insights_0010"
down_revision = "insights_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "insights_subscribe_grants",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("template_id", sa.String(64), nullable=False),
        sa.Column("credits", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("tenant_id", "member_id", "template_id"),
    )
    op.add_column("insights_settings", sa.Column("sub_template_id", sa.String(64), nullable=False, server_default=""))
    op.add_column("insights_settings", sa.Column("sub_text_key", sa.String(32), nullable=False,
                                                 server_default="thing1"))


def downgrade() -> None:
    with op.batch_alter_table("insights_settings") as batch:
        batch.drop_column("sub_text_key")
        batch.drop_column("sub_template_id")
    op.drop_table("insights_subscribe_grants")
