"""intelligence: the merchant's search synonyms

Revision ID: intel_0001
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa

revision = "intel_0001"
down_revision = "0002"   # a core revision with tenants, not the core head: the core head stays in
                         # alembic_version beside this branch, so an uninstalled package is set aside cleanly
branch_labels = ("intelligence",)
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "intel_synonyms",
        sa.Column("id", ID, nullable=False),
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("word", sa.String(20), nullable=False),
        sa.Column("alternatives", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_intel_synonyms_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_intel_synonyms")),
        sa.UniqueConstraint("tenant_id", "word", name=op.f("uq_intel_synonyms_tenant_id_word")),
    )
    op.create_index("ix_intel_synonyms_tenant_id", "intel_synonyms", ["tenant_id"])


def downgrade() -> None:
    op.drop_index("ix_intel_synonyms_tenant_id", table_name="intel_synonyms")
    op.drop_table("intel_synonyms")
