"""admins: a credentials version (console sessions carry it) and a disabled flag

Issue 17 item 9: a password reset, a role change or disabling an admin must end their
console sessions (kept in the key-value store, so they are not deleted one by one: each
carries the version it was opened with and stops working when the admin's moves on) and
their API tokens (revoked in console_api_tokens).

Revision ID: sec17_webedge_0001
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa

revision = "sec17_webedge_0001"
down_revision = "seam19_0001"  # one core head
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN on SQLite and PostgreSQL alike (a server default fills existing rows).
    op.add_column("admins", sa.Column("cred_version", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("admins", sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("admins") as batch_op:
        batch_op.drop_column("disabled_at")
        batch_op.drop_column("cred_version")
