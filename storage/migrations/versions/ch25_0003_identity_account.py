"""member identities remember the channel account they belong to

Issue 25: an official-account openid belongs to one of the tenant's official accounts;
a push to the member goes through that account (its token) to that openid. 0: the
tenant's primary account (every identity from before).

Revision ID: ch25_0003
Revises: ch25_0002
"""
from alembic import op
import sqlalchemy as sa

revision = "ch25_0003"
down_revision = "ch25_0002"  # one core head
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("member_identities") as batch:
        batch.add_column(sa.Column("account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                                   nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("member_identities") as batch:
        batch.drop_column("account_id")
