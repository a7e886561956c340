"""intelligence: a pricing rule's cost becomes its SKU's (skus.cost_fen, the core's cost_0001)

The cost was typed per rule; the core now keeps one cost per SKU (the product page, every
rule, the preview and the A/B margin read it). Rules saved before are marked
`cost_moved = false`: the pricing job gives each one's cost to its SKU when the SKU has
none, once (pricing.move_costs), then marks it. Not a data copy here: this branch may run
before the core's cost_0001 in one upgrade (independent branches), and a `depends_on`
would make Alembic keep only intel_0007 in alembic_version for both branches, so a
database whose intelligence package is later uninstalled would lose its core head
(storage.db sets unknown revisions aside). Until the job runs, the rule's own cost counts.

Revision ID: intel_0007
Revises: intel_0006
"""
from alembic import op
import sqlalchemy as sa

revision = "intel_0007"
down_revision = "intel_0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("intel_price_rules") as batch:
        batch.add_column(sa.Column("cost_moved", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("intel_price_rules") as batch:
        batch.drop_column("cost_moved")
