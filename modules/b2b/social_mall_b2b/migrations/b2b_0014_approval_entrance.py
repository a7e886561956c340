"""b2b: the channel account a buyer's over-budget order came through (its entrance), so the
order placed on approval is the buyer's (its merchant, its pushes), not the approver's

Revision ID: b2b_0014
Revises: b2b_0013
"""
from alembic import op
import sqlalchemy as sa

revision = "b2b_0014"
down_revision = "b2b_0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("b2b_approvals") as batch:
        batch.add_column(sa.Column("account_id", sa.BigInteger(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("b2b_approvals") as batch:
        batch.drop_column("account_id")
