"""group-buy leader rewards (团长奖励): a campaign's reward per successful team

Issue 23: a campaign pays its team leader a fixed amount (fen) or a share of the team's
paid goods (basis points) per successful team, through the referral ledger (frozen until
the orders complete, reversed with refunds like commissions). Existing campaigns: none.

Revision ID: h23_0001
Revises: i24_0003
"""
from alembic import op
import sqlalchemy as sa

revision = "h23_0001"
down_revision = "i24_0003"  # one core head
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("groupbuy_campaigns",
                  sa.Column("leader_reward_fen", sa.BigInteger(), nullable=False, server_default="0"))
    op.add_column("groupbuy_campaigns",
                  sa.Column("leader_reward_bp", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("groupbuy_campaigns") as batch_op:
        batch_op.drop_column("leader_reward_bp")
        batch_op.drop_column("leader_reward_fen")
