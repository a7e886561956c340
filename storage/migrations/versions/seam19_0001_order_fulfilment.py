"""orders: the fulfilment method (express, or a module's: pick-up, same-city delivery…)

Revision ID: seam19_0001
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa

revision = "seam19_0001"
down_revision = "sec17_sandbox_payout_state"  # one core head
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NOT NULL with a server default: existing orders read "express" on SQLite and
    # PostgreSQL alike (a plain ADD COLUMN, no table rebuild).
    op.add_column("orders", sa.Column("fulfilment", sa.String(16), nullable=False, server_default="express"))


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch_op:
        batch_op.drop_column("fulfilment")
