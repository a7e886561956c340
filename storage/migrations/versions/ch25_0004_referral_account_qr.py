"""a distributor's QR at each of the tenant's other official accounts; the merchant a payout went through

Issue 25: a distributor talking to a second official account gets that account's permanent
QR (scene ref_<code>); the primary account's stays in referral_distributors.qr_url. A
withdrawal's payout is sent through the merchant of the distributor's account
(referral_withdrawals.payout_merchant_id, NULL: not sent yet / the default), and asked there.

Revision ID: ch25_0004
Revises: tags_0002
"""
from alembic import op
import sqlalchemy as sa

revision = "ch25_0004"
down_revision = "tags_0002"  # one core head
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
T = "referral_account_qr"


def upgrade() -> None:
    op.create_table(
        T,
        sa.Column("id", _ID, nullable=False),
        sa.Column("tenant_id", _ID, nullable=False),
        sa.Column("distributor_id", _ID, nullable=False),
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("url", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=f"fk_{T}_tenant_id_tenants"),
        sa.ForeignKeyConstraint(["distributor_id"], ["referral_distributors.id"],
                                name=f"fk_{T}_distributor_id_referral_distributors"),
        sa.ForeignKeyConstraint(["account_id"], ["channel_accounts.id"], name=f"fk_{T}_account_id_channel_accounts"),
        sa.PrimaryKeyConstraint("id", name=f"pk_{T}"),
        sa.UniqueConstraint("tenant_id", "distributor_id", "account_id",
                            name=f"uq_{T}_tenant_id_distributor_id_account_id"),
    )
    op.create_index(f"ix_{T}_tenant_id", T, ["tenant_id"])
    with op.batch_alter_table("referral_withdrawals") as batch:
        batch.add_column(sa.Column("payout_merchant_id", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("referral_withdrawals") as batch:
        batch.drop_column("payout_merchant_id")
    op.drop_table(T)
