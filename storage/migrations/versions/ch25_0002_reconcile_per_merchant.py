"""reconciliation reports per merchant

Issue 25: a tenant may have several WeChat Pay merchants, each with its own trade bill;
a day is reconciled (and reported) once per merchant. Reports from before keep no merchant
(they were the default merchant's).

Revision ID: ch25_0002
Revises: tags_0001
"""
from alembic import op
import sqlalchemy as sa

revision = "ch25_0002"
down_revision = "tags_0001"  # one core head
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("pay_reconciliations") as batch:
        batch.add_column(sa.Column("pay_account_id", _ID, nullable=True))
        batch.drop_constraint("uq_pay_reconciliations_day", type_="unique")
        batch.create_unique_constraint("uq_pay_reconciliations_merchant_day",
                                       ["tenant_id", "pay_account_id", "bill_date"])


def downgrade() -> None:
    op.execute("DELETE FROM pay_reconciliations WHERE pay_account_id IS NOT NULL AND id NOT IN "
               "(SELECT min(id) FROM pay_reconciliations GROUP BY tenant_id, bill_date)")
    with op.batch_alter_table("pay_reconciliations") as batch:
        batch.drop_constraint("uq_pay_reconciliations_merchant_day", type_="unique")
        batch.create_unique_constraint("uq_pay_reconciliations_day", ["tenant_id", "bill_date"])
        batch.drop_column("pay_account_id")
