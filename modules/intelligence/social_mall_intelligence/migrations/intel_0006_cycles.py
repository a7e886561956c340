"""intelligence: repurchase cycles (estimated nightly) and the merchant's consumable/durable marks

Revision ID: intel_0006
Revises: intel_0005
"""
from alembic import op
import sqlalchemy as sa

revision = "intel_0006"
down_revision = "intel_0005"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    t = "intel_cycles"
    op.create_table(
        t,
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("product_id", sa.BigInteger(), nullable=False),
        sa.Column("days", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f(f"fk_{t}_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("tenant_id", "product_id", name=op.f(f"pk_{t}")),
    )
    t = "intel_cycle_marks"
    op.create_table(
        t,
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("product_id", sa.BigInteger(), nullable=False),
        sa.Column("consumable", sa.Boolean(), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f(f"fk_{t}_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("tenant_id", "product_id", name=op.f(f"pk_{t}")),
    )


def downgrade() -> None:
    op.drop_table("intel_cycle_marks")
    op.drop_table("intel_cycles")
