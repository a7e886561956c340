"""member tags: a tenant's tags and the members holding them (by hand or by a rule)

Revision ID: tags_0001
Revises: ch25_0001
"""
from alembic import op
import sqlalchemy as sa

revision = "tags_0001"
down_revision = "ch25_0001"  # one core head
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "member_tags",
        sa.Column("id", _ID, nullable=False),
        sa.Column("tenant_id", _ID, nullable=False),
        sa.Column("name", sa.String(30), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name="fk_member_tags_tenant_id_tenants"),
        sa.PrimaryKeyConstraint("id", name="pk_member_tags"),
        sa.UniqueConstraint("tenant_id", "name", name="uq_member_tags_tenant_id_name"),
    )
    op.create_index("ix_member_tags_tenant_id", "member_tags", ["tenant_id"])
    op.create_table(
        "member_tag_links",
        sa.Column("id", _ID, nullable=False),
        sa.Column("tenant_id", _ID, nullable=False),
        sa.Column("tag_id", _ID, nullable=False),
        sa.Column("member_id", _ID, nullable=False),
        sa.Column("source", sa.String(40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name="fk_member_tag_links_tenant_id_tenants"),
        sa.ForeignKeyConstraint(["tag_id"], ["member_tags.id"], name="fk_member_tag_links_tag_id_member_tags"),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], name="fk_member_tag_links_member_id_members"),
        sa.PrimaryKeyConstraint("id", name="pk_member_tag_links"),
        sa.UniqueConstraint("tenant_id", "tag_id", "member_id", name="uq_member_tag_links_tenant_id_tag_id_member_id"),
    )
    op.create_index("ix_member_tag_links_tenant_id", "member_tag_links", ["tenant_id"])
    op.create_index("ix_member_tag_links_member", "member_tag_links", ["tenant_id", "member_id"])


def downgrade() -> None:
    op.drop_table("member_tag_links")
    op.drop_table("member_tags")
