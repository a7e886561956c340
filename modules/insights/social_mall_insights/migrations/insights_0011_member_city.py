"""insights: the city a member last sent a location from (segments' city rule)

Revision ID: insights_0011
Revises: insights_0010
"""
from alembic import op
import sqlalchemy as sa

revision = "insights_0011"
down_revision = "insights_0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("insights_members", sa.Column("city", sa.String(16), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("insights_members") as batch:
        batch.drop_column("city")
