"""b2b: products sold to business accounts only (企业专供)

Revision ID: b2b_0011
Revises: b2b_0010
"""
from alembic import op
import sqlalchemy as sa

revision = "b2b_0011"
down_revision = "b2b_0010"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def _fk(t: str, col: str, ref: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([col], [f"{ref}.id"], name=op.f(f"fk_{t}_{col}_{ref}"))


def upgrade() -> None:
    t = "b2b_exclusive_products"
    op.create_table(
        t,
        sa.Column("id", ID, nullable=False),
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("product_id", ID, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        _fk(t, "tenant_id", "tenants"), _fk(t, "product_id", "products"),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{t}")),
        sa.UniqueConstraint("tenant_id", "product_id", name=op.f(f"uq_{t}_tenant_id_product_id")),
    )
    op.create_index(f"ix_{t}_tenant_id", t, ["tenant_id"])


def downgrade() -> None:
    op.drop_table("b2b_exclusive_products")
