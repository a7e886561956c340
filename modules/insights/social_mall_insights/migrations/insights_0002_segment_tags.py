"""insights: a segment may give its members a core member tag (job insights.segment_tags)

Revision ID: insights_0002
Revises: insights_0001
"""
from alembic import op
import sqlalchemy as sa

revision = "insights_0002"
down_revision = "insights_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("insights_segments", sa.Column("tag_id", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("insights_segments") as batch:
        batch.drop_column("tag_id")
