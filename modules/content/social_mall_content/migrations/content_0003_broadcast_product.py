"""content: a broadcast may carry a product (its title, price and buy link)

Revision ID: content_0003
Revises: content_0002
"""
from alembic import op
import sqlalchemy as sa

revision = "content_0003"
down_revision = "content_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("content_broadcasts", sa.Column("product_id", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("content_broadcasts") as batch_op:
        batch_op.drop_column("product_id")
