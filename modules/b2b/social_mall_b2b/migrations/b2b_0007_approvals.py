"""b2b: buyers' orders over budget waiting for the owner's approval

Revision ID: b2b_0007
Revises: b2b_0006
"""
from alembic import op
import sqlalchemy as sa

revision = "b2b_0007"
down_revision = "b2b_0006"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    t = "b2b_approvals"
    op.create_table(
        t,
        sa.Column("id", ID, nullable=False),
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("company_id", ID, nullable=False),
        sa.Column("member_id", ID, nullable=False),
        sa.Column("lines", sa.String(4000), nullable=False),
        sa.Column("total_fen", sa.BigInteger(), nullable=False),
        sa.Column("ship_name", sa.String(40), nullable=False),
        sa.Column("ship_phone", sa.String(20), nullable=False),
        sa.Column("ship_address", sa.String(200), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("order_id", ID, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("decided_at", TS, nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f(f"fk_{t}_tenant_id_tenants")),
        sa.ForeignKeyConstraint(["company_id"], ["b2b_companies.id"], name=op.f(f"fk_{t}_company_id_b2b_companies")),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], name=op.f(f"fk_{t}_member_id_members")),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f(f"fk_{t}_order_id_orders")),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{t}")),
    )
    op.create_index(f"ix_{t}_tenant_id", t, ["tenant_id"])
    op.create_index(f"ix_{t}_company_id", t, ["company_id"])


def downgrade() -> None:
    op.drop_table("b2b_approvals")
