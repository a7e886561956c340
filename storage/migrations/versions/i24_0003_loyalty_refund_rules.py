"""loyalty_settings: what a refund gives back (points paid with, the coupon), per tenant

Revision ID: i24_0003
Revises: i24_0002
"""
from alembic import op
import sqlalchemy as sa

revision = "i24_0003"
down_revision = "i24_0002"  # one core head
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("loyalty_settings", sa.Column("refund_points", sa.String(8), nullable=False, server_default="share"))
    op.add_column("loyalty_settings", sa.Column("refund_coupon", sa.String(8), nullable=False, server_default="full"))


def downgrade() -> None:
    with op.batch_alter_table("loyalty_settings") as batch_op:
        batch_op.drop_column("refund_coupon")
        batch_op.drop_column("refund_points")
