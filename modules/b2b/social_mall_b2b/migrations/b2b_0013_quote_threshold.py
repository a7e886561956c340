"""b2b: a per-tenant quantity from which the buyer is told to ask for a quote (询价)

Revision ID: b2b_0013
Revises: b2b_0012
"""
from alembic import op
import sqlalchemy as sa

revision = "b2b_0013"
down_revision = "b2b_0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("b2b_shop_terms", sa.Column("quote_from_qty", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("b2b_shop_terms") as batch:
        batch.drop_column("quote_from_qty")
