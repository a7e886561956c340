"""b2b: buyers' monthly budgets and the orders counted against them

Revision ID: b2b_0005
Revises: b2b_0004
"""
from alembic import op
import sqlalchemy as sa

revision = "b2b_0005"
down_revision = "b2b_0004"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    t = "b2b_buyer_budgets"
    op.create_table(
        t,
        sa.Column("id", ID, nullable=False),
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("member_id", ID, nullable=False),
        sa.Column("limit_fen", sa.BigInteger(), nullable=False),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("spent_fen", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f(f"fk_{t}_tenant_id_tenants")),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], name=op.f(f"fk_{t}_member_id_members")),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{t}")),
        sa.UniqueConstraint("tenant_id", "member_id", name=op.f(f"uq_{t}_tenant_id_member_id")),
        sa.CheckConstraint("limit_fen >= 0 AND spent_fen >= 0", name=op.f("ck_b2b_buyer_budgets_amounts")),
    )
    op.create_index(f"ix_{t}_tenant_id", t, ["tenant_id"])
    t = "b2b_budget_entries"
    op.create_table(
        t,
        sa.Column("id", ID, nullable=False),
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("member_id", ID, nullable=False),
        sa.Column("order_id", ID, nullable=False),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("returned", sa.Boolean(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f(f"fk_{t}_tenant_id_tenants")),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], name=op.f(f"fk_{t}_member_id_members")),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f(f"fk_{t}_order_id_orders")),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{t}")),
        sa.UniqueConstraint("tenant_id", "order_id", name=op.f(f"uq_{t}_tenant_id_order_id")),
    )
    op.create_index(f"ix_{t}_tenant_id", t, ["tenant_id"])


def downgrade() -> None:
    op.drop_table("b2b_budget_entries")
    op.drop_table("b2b_buyer_budgets")
