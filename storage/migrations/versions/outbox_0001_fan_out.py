"""outbox: one row per event, delivered to every subscriber of its topic ("*"); a
subscriber's own retry row keeps the event's first row id (origin_id)

Revision ID: outbox_0001
Revises: ch25_0004
"""
from alembic import op
import sqlalchemy as sa

revision = "outbox_0001"
down_revision = "ch25_0004"  # one core head
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("origin_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                                   nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("origin_id")
