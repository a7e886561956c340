"""order_lines.restocked_qty: units of a line put back into stock before shipping

A refund of part of an unshipped order puts those units back into sellable stock at once;
a later full refund or cancel puts back only the rest (each unit once, guarded in SQL).

Revision ID: i24_0002
Revises: i24_0001
"""
from alembic import op
import sqlalchemy as sa

revision = "i24_0002"
down_revision = "i24_0001"  # one core head
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("order_lines", sa.Column("restocked_qty", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("order_lines") as batch_op:
        batch_op.drop_column("restocked_qty")
