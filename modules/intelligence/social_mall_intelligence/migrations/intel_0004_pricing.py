"""intelligence: dynamic pricing rules (cost and guard rails per SKU), price changes, A/B tests

Revision ID: intel_0004
Revises: intel_0003
"""
from alembic import op
import sqlalchemy as sa

revision = "intel_0004"
down_revision = "intel_0003"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    t = "intel_price_rules"
    op.create_table(
        t,
        sa.Column("id", ID, nullable=False),
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("sku_id", ID, nullable=False),
        sa.Column("cost_fen", sa.BigInteger(), nullable=False),
        sa.Column("min_margin_bp", sa.Integer(), nullable=False),
        sa.Column("ceiling_fen", sa.BigInteger(), nullable=False),
        sa.Column("base_fen", sa.BigInteger(), nullable=False),
        sa.Column("max_step_bp", sa.Integer(), nullable=False),
        sa.Column("max_day_bp", sa.Integer(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f(f"fk_{t}_tenant_id_tenants")),
        sa.ForeignKeyConstraint(["sku_id"], ["skus.id"], name=op.f(f"fk_{t}_sku_id_skus")),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{t}")),
        sa.UniqueConstraint("tenant_id", "sku_id", name=op.f(f"uq_{t}_tenant_id_sku_id")),
    )
    t = "intel_price_changes"
    op.create_table(
        t,
        sa.Column("id", ID, nullable=False),
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("sku_id", sa.BigInteger(), nullable=False),
        sa.Column("rule_id", sa.BigInteger(), nullable=False),
        sa.Column("bucket", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("before_fen", sa.BigInteger(), nullable=False),
        sa.Column("after_fen", sa.BigInteger(), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("rolled_back_at", TS, nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f(f"fk_{t}_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{t}")),
        sa.UniqueConstraint("tenant_id", "sku_id", "bucket", name=op.f(f"uq_{t}_tenant_id_sku_id_bucket")),
    )
    op.create_index("ix_intel_price_changes_at", t, ["tenant_id", "at"])
    t = "intel_price_tests"
    op.create_table(
        t,
        sa.Column("id", ID, nullable=False),
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("name", sa.String(40), nullable=False),
        sa.Column("share_bp", sa.Integer(), nullable=False),
        sa.Column("unit", sa.String(8), nullable=False),
        sa.Column("salt", sa.String(16), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("ended_at", TS, nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f(f"fk_{t}_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{t}")),
    )
    op.create_index(op.f("ix_intel_price_tests_tenant_id"), t, ["tenant_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_intel_price_tests_tenant_id"), table_name="intel_price_tests")
    op.drop_table("intel_price_tests")
    op.drop_index("ix_intel_price_changes_at", table_name="intel_price_changes")
    op.drop_table("intel_price_changes")
    op.drop_table("intel_price_rules")
