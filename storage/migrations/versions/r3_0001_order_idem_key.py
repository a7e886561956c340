"""orders.idem_key: the inbound message that placed an order (one order per message and tenant)

WeChat retries a message it got no answer for. A worker that dies after the order desk
committed an order and before the chat step committed leaves the message unconfirmed: its
retry runs the step again and finds the order by this key instead of placing a second one.

Revision ID: r3_0001
Revises: ch25_0003
"""
from alembic import op
import sqlalchemy as sa

revision = "r3_0001"
down_revision = "ch25_0003"  # one core head
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("orders", sa.Column("idem_key", sa.String(96), nullable=True))
    op.create_index("uq_orders_tenant_id_idem_key", "orders", ["tenant_id", "idem_key"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_orders_tenant_id_idem_key", table_name="orders")
    op.drop_column("orders", "idem_key")
