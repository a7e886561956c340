"""b2b: quotes (询价) and their lines

Revision ID: b2b_0003
Revises: b2b_0002
"""
from alembic import op
import sqlalchemy as sa

revision = "b2b_0003"
down_revision = "b2b_0002"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    t = "b2b_quotes"
    op.create_table(
        t,
        sa.Column("id", ID, nullable=False),
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("company_id", ID, nullable=False),
        sa.Column("member_id", ID, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("answered_at", TS, nullable=True),
        sa.Column("answered_by", sa.String(64), nullable=False),
        sa.Column("expires_at", TS, nullable=True),
        sa.Column("order_id", ID, nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f(f"fk_{t}_tenant_id_tenants")),
        sa.ForeignKeyConstraint(["company_id"], ["b2b_companies.id"], name=op.f(f"fk_{t}_company_id_b2b_companies")),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], name=op.f(f"fk_{t}_member_id_members")),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f(f"fk_{t}_order_id_orders")),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{t}")),
    )
    op.create_index(f"ix_{t}_tenant_id", t, ["tenant_id"])
    t = "b2b_quote_lines"
    op.create_table(
        t,
        sa.Column("id", ID, nullable=False),
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("quote_id", ID, nullable=False),
        sa.Column("sku_id", ID, nullable=False),
        sa.Column("qty", sa.Integer(), nullable=False),
        sa.Column("unit_fen", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f(f"fk_{t}_tenant_id_tenants")),
        sa.ForeignKeyConstraint(["quote_id"], ["b2b_quotes.id"], name=op.f(f"fk_{t}_quote_id_b2b_quotes")),
        sa.ForeignKeyConstraint(["sku_id"], ["skus.id"], name=op.f(f"fk_{t}_sku_id_skus")),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{t}")),
        sa.UniqueConstraint("quote_id", "sku_id", name=op.f(f"uq_{t}_quote_id_sku_id")),
        sa.CheckConstraint("qty >= 1 AND unit_fen >= 0", name=op.f("ck_b2b_quote_lines_positive")),
    )
    op.create_index(f"ix_{t}_tenant_id", t, ["tenant_id"])
    op.create_index(f"ix_{t}_quote_id", t, ["quote_id"])


def downgrade() -> None:
    op.drop_table("b2b_quote_lines")
    op.drop_table("b2b_quotes")
