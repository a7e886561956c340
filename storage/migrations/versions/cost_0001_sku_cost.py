"""skus.cost_fen: what one unit costs the merchant (成本价), entered in the console

Issue 22: automatic price rules keep a floor of cost × (1 + minimum margin), and margins
are read against it; the cost belongs to the SKU (one figure for every rule, report and
readout), not to a rule. NULL: not entered.

Revision ID: cost_0001
Revises: outbox_0001
"""
from alembic import op
import sqlalchemy as sa

revision = "cost_0001"
down_revision = "outbox_0001"  # one core head
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("skus") as batch:
        batch.add_column(sa.Column("cost_fen", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("skus") as batch:
        batch.drop_column("cost_fen")
