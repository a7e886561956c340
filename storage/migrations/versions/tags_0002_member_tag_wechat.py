"""member tags synced to WeChat: a core tag's user-tag id on each official account

Revision ID: tags_0002
Revises: r3_0001
"""
from alembic import op
import sqlalchemy as sa

revision = "tags_0002"
down_revision = "r3_0001"  # one core head
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "member_tag_wechat",
        sa.Column("id", _ID, nullable=False),
        sa.Column("tenant_id", _ID, nullable=False),
        sa.Column("tag_id", _ID, nullable=False),
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("wechat_tag_id", sa.Integer(), nullable=False),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name="fk_member_tag_wechat_tenant_id_tenants"),
        sa.ForeignKeyConstraint(["tag_id"], ["member_tags.id"], name="fk_member_tag_wechat_tag_id_member_tags"),
        sa.ForeignKeyConstraint(["account_id"], ["channel_accounts.id"],
                                name="fk_member_tag_wechat_account_id_channel_accounts"),
        sa.PrimaryKeyConstraint("id", name="pk_member_tag_wechat"),
        sa.UniqueConstraint("tenant_id", "tag_id", "account_id",
                            name="uq_member_tag_wechat_tenant_id_tag_id_account_id"),
    )
    op.create_index("ix_member_tag_wechat_tenant_id", "member_tag_wechat", ["tenant_id"])


def downgrade() -> None:
    op.drop_table("member_tag_wechat")
