"""b2b: VAT rate per product (prices tax-inclusive)

Revision ID: b2b_0009
Revises: b2b_0008
"""
from alembic import op
import sqlalchemy as sa

revision = "b2b_0009"
down_revision = "b2b_0008"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    t = "b2b_vat_rates"
    op.create_table(
        t,
        sa.Column("id", ID, nullable=False),
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("product_id", ID, nullable=False),
        sa.Column("rate_bp", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f(f"fk_{t}_tenant_id_tenants")),
        sa.ForeignKeyConstraint(["product_id"], ["products.id"], name=op.f(f"fk_{t}_product_id_products")),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{t}")),
        sa.UniqueConstraint("tenant_id", "product_id", name=op.f(f"uq_{t}_tenant_id_product_id")),
        sa.CheckConstraint("rate_bp >= 0 AND rate_bp <= 3000", name=op.f("ck_b2b_vat_rates_rate")),
    )
    op.create_index(f"ix_{t}_tenant_id", t, ["tenant_id"])


def downgrade() -> None:
    op.drop_table("b2b_vat_rates")
