"""members: birthday (month, day, optional year) and an index for the birthday job

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable columns: a plain ADD COLUMN on SQLite and PostgreSQL alike (no table rebuild).
    op.add_column("members", sa.Column("birth_month", sa.Integer(), nullable=True))
    op.add_column("members", sa.Column("birth_day", sa.Integer(), nullable=True))
    op.add_column("members", sa.Column("birth_year", sa.Integer(), nullable=True))
    op.create_index("ix_members_birthday", "members", ["tenant_id", "birth_month", "birth_day"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_members_birthday", table_name="members")
    with op.batch_alter_table("members") as batch_op:
        batch_op.drop_column("birth_year")
        batch_op.drop_column("birth_day")
        batch_op.drop_column("birth_month")
