"""intelligence: purchases, the nightly recommendation model, members' personalisation setting

Revision ID: intel_0002
Revises: intel_0001
"""
from alembic import op
import sqlalchemy as sa

revision = "intel_0002"
down_revision = "intel_0001"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def _tenant_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f(f"fk_{table}_tenant_id_tenants"))


def upgrade() -> None:
    t = "intel_interactions"
    op.create_table(
        t,
        sa.Column("id", ID, nullable=False),
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("product_id", sa.BigInteger(), nullable=False),
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.Column("qty", sa.Integer(), nullable=False),
        sa.Column("at", TS, nullable=False),
        _tenant_fk(t),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{t}")),
        sa.UniqueConstraint("tenant_id", "order_id", "product_id", name=op.f(f"uq_{t}_tenant_id_order_id_product_id")),
    )
    op.create_index("ix_intel_interactions_member", t, ["tenant_id", "member_id"])
    t = "intel_neighbours"
    op.create_table(
        t,
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("product_id", sa.BigInteger(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("related_id", sa.BigInteger(), nullable=False),
        sa.Column("score_e6", sa.BigInteger(), nullable=False),
        _tenant_fk(t),
        sa.PrimaryKeyConstraint("tenant_id", "product_id", "rank", name=op.f(f"pk_{t}")),
    )
    t = "intel_popular"
    op.create_table(
        t,
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.BigInteger(), nullable=False),
        sa.Column("category_id", sa.BigInteger(), nullable=False),
        sa.Column("buyers", sa.Integer(), nullable=False),
        _tenant_fk(t),
        sa.PrimaryKeyConstraint("tenant_id", "rank", name=op.f(f"pk_{t}")),
    )
    t = "intel_models"
    op.create_table(
        t,
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("trained_at", TS, nullable=False),
        _tenant_fk(t),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f(f"pk_{t}")),
    )
    t = "intel_member_prefs"
    op.create_table(
        t,
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("personalised", sa.Boolean(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        _tenant_fk(t),
        sa.PrimaryKeyConstraint("tenant_id", "member_id", name=op.f(f"pk_{t}")),
    )


def downgrade() -> None:
    for t in ("intel_member_prefs", "intel_models", "intel_popular", "intel_neighbours"):
        op.drop_table(t)
    op.drop_index("ix_intel_interactions_member", table_name="intel_interactions")
    op.drop_table("intel_interactions")
