"""b2b: credit terms (账期): a company's limit and balance, and the balance's entries, monthly statements

Revision ID: b2b_0006
Revises: b2b_0005
"""
from alembic import op
import sqlalchemy as sa

revision = "b2b_0006"
down_revision = "b2b_0005"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    t = "b2b_credit_accounts"
    op.create_table(
        t,
        sa.Column("id", ID, nullable=False),
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("company_id", ID, nullable=False),
        sa.Column("limit_fen", sa.BigInteger(), nullable=False),
        sa.Column("outstanding_fen", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f(f"fk_{t}_tenant_id_tenants")),
        sa.ForeignKeyConstraint(["company_id"], ["b2b_companies.id"], name=op.f(f"fk_{t}_company_id_b2b_companies")),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{t}")),
        sa.UniqueConstraint("tenant_id", "company_id", name=op.f(f"uq_{t}_tenant_id_company_id")),
        sa.CheckConstraint("limit_fen >= 0 AND outstanding_fen >= 0", name=op.f("ck_b2b_credit_amounts")),
    )
    op.create_index(f"ix_{t}_tenant_id", t, ["tenant_id"])
    t = "b2b_credit_entries"
    op.create_table(
        t,
        sa.Column("id", ID, nullable=False),
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("company_id", ID, nullable=False),
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("ref", sa.String(64), nullable=False),
        sa.Column("order_id", ID, nullable=True),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f(f"fk_{t}_tenant_id_tenants")),
        sa.ForeignKeyConstraint(["company_id"], ["b2b_companies.id"], name=op.f(f"fk_{t}_company_id_b2b_companies")),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f(f"fk_{t}_order_id_orders")),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{t}")),
        sa.UniqueConstraint("tenant_id", "kind", "ref", name=op.f(f"uq_{t}_tenant_id_kind_ref")),
        sa.CheckConstraint("amount_fen > 0", name=op.f("ck_b2b_credit_entries_amount")),
    )
    op.create_index(f"ix_{t}_tenant_id", t, ["tenant_id"])
    op.create_index(f"ix_{t}_company_id", t, ["company_id"])
    t = "b2b_statements"
    op.create_table(
        t,
        sa.Column("id", ID, nullable=False),
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("company_id", ID, nullable=False),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("paid_fen", sa.BigInteger(), nullable=False),
        sa.Column("issued_at", TS, nullable=False),
        sa.Column("due_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f(f"fk_{t}_tenant_id_tenants")),
        sa.ForeignKeyConstraint(["company_id"], ["b2b_companies.id"], name=op.f(f"fk_{t}_company_id_b2b_companies")),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{t}")),
        sa.UniqueConstraint("tenant_id", "company_id", "period", name=op.f(f"uq_{t}_tenant_id_company_id_period")),
        sa.CheckConstraint("paid_fen >= 0 AND paid_fen <= amount_fen", name=op.f("ck_b2b_statements_paid")),
    )
    op.create_index(f"ix_{t}_tenant_id", t, ["tenant_id"])


def downgrade() -> None:
    op.drop_table("b2b_statements")
    op.drop_table("b2b_credit_entries")
    op.drop_table("b2b_credit_accounts")
