"""intelligence: recommendation impressions and the revenue attributed to them

Revision ID: intel_0003
Revises: intel_0002
"""
from alembic import op
import sqlalchemy as sa

revision = "intel_0003"
down_revision = "intel_0002"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    t = "intel_impressions"
    op.create_table(
        t,
        sa.Column("id", ID, nullable=False),
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("product_id", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("shown_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f(f"fk_{t}_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{t}")),
    )
    op.create_index("ix_intel_impressions_member", t, ["tenant_id", "member_id", "product_id"])
    op.create_index("ix_intel_impressions_shown", t, ["tenant_id", "shown_at"])
    t = "intel_attributions"
    op.create_table(
        t,
        sa.Column("id", ID, nullable=False),
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.Column("product_id", sa.BigInteger(), nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("revenue_fen", sa.BigInteger(), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f(f"fk_{t}_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{t}")),
        sa.UniqueConstraint("tenant_id", "order_id", "product_id", name=op.f(f"uq_{t}_tenant_id_order_id_product_id")),
    )
    op.create_index("ix_intel_attributions_at", t, ["tenant_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_intel_attributions_at", table_name="intel_attributions")
    op.drop_table("intel_attributions")
    op.drop_index("ix_intel_impressions_shown", table_name="intel_impressions")
    op.drop_index("ix_intel_impressions_member", table_name="intel_impressions")
    op.drop_table("intel_impressions")
