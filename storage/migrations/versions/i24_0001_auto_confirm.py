"""auto-confirm of shipped orders: a per-tenant period and the day-before reminder

Issue 24: shipped orders are confirmed received N days after shipping, N the tenant's
(NULL: the deployment's AUTO_COMPLETE_DAYS, 10 by default); the member is told the day
before (receipt_reminded_at: once per order).

Revision ID: i24_0001
Revises: sec17_webedge_0001
"""
from alembic import op
import sqlalchemy as sa

revision = "i24_0001"
down_revision = "sec17_webedge_0001"  # one core head
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("tenants", sa.Column("auto_complete_days", sa.Integer(), nullable=True))
    op.add_column("orders", sa.Column("receipt_reminded_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch_op:
        batch_op.drop_column("receipt_reminded_at")
    with op.batch_alter_table("tenants") as batch_op:
        batch_op.drop_column("auto_complete_days")
