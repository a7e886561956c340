"""content: an account's mass send WeChat didn't answer (busy, unreachable, a 5xx) is tried
again with its clientmsgid; the row counts the tries and keeps when the first was, so a
retry never outlives WeChat's 24-hour memory of that clientmsgid

Revision ID: content_0006
Revises: content_0005
"""
from alembic import op
import sqlalchemy as sa

revision = "content_0006"
down_revision = "content_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("content_broadcast_sends") as b:
        b.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="1"))
        b.add_column(sa.Column("first_tried_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("content_broadcast_sends") as b:
        b.drop_column("first_tried_at")
        b.drop_column("attempts")
