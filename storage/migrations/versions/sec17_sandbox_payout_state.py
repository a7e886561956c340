"""referral: the payout's state at the gateway and when it was last asked (商家转账 bills
left ACCEPTED / PROCESSING / WAIT_USER_CONFIRM… are polled until final)

Revision ID: sec17_sandbox_payout_state
Revises: referral_0002
"""
from alembic import op
import sqlalchemy as sa

revision = "sec17_sandbox_payout_state"
down_revision = "sec17_codesevents_0001"  # one head
branch_labels = None
depends_on = None

T = "referral_withdrawals"


def upgrade() -> None:
    # a NOT NULL column with a server default and a nullable one: plain ADD COLUMN on both backends
    op.add_column(T, sa.Column("payout_state", sa.String(length=24), nullable=False, server_default=""))
    op.add_column(T, sa.Column("payout_checked_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_referral_withdrawals_status_checked", T, ["status", "payout_checked_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_referral_withdrawals_status_checked", table_name=T)
    with op.batch_alter_table(T) as batch_op:
        batch_op.drop_column("payout_checked_at")
        batch_op.drop_column("payout_state")
