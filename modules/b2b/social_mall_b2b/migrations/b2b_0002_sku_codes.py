"""b2b: SKU codes for quick orders

Revision ID: b2b_0002
Revises: b2b_0001
"""
from alembic import op
import sqlalchemy as sa

revision = "b2b_0002"
down_revision = "b2b_0001"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    t = "b2b_sku_codes"
    op.create_table(
        t,
        sa.Column("id", ID, nullable=False),
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("sku_id", ID, nullable=False),
        sa.Column("code", sa.String(32), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f(f"fk_{t}_tenant_id_tenants")),
        sa.ForeignKeyConstraint(["sku_id"], ["skus.id"], name=op.f(f"fk_{t}_sku_id_skus")),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{t}")),
        sa.UniqueConstraint("tenant_id", "sku_id", name=op.f(f"uq_{t}_tenant_id_sku_id")),
        sa.UniqueConstraint("tenant_id", "code", name=op.f(f"uq_{t}_tenant_id_code")),
    )
    op.create_index(f"ix_{t}_tenant_id", t, ["tenant_id"])


def downgrade() -> None:
    op.drop_table("b2b_sku_codes")
