"""b2b: bank transfers (对公转账): the shop's account and timeout, transfers and receipts

Revision ID: b2b_0008
Revises: b2b_0007
"""
from alembic import op
import sqlalchemy as sa

revision = "b2b_0008"
down_revision = "b2b_0007"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def _fk(t: str, col: str, ref: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([col], [f"{ref}.id"], name=op.f(f"fk_{t}_{col}_{ref}"))


def upgrade() -> None:
    t = "b2b_shop_terms"
    op.create_table(
        t,
        sa.Column("id", ID, nullable=False),
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("bank_name", sa.String(60), nullable=False),
        sa.Column("account_name", sa.String(60), nullable=False),
        sa.Column("account_no", sa.String(40), nullable=False),
        sa.Column("transfer_hours", sa.Integer(), nullable=False),
        _fk(t, "tenant_id", "tenants"),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{t}")),
        sa.UniqueConstraint("tenant_id", name=op.f(f"uq_{t}_tenant_id")),
    )
    op.create_index(f"ix_{t}_tenant_id", t, ["tenant_id"])
    t = "b2b_transfers"
    op.create_table(
        t,
        sa.Column("id", ID, nullable=False),
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("order_id", ID, nullable=False),
        sa.Column("member_id", ID, nullable=False),
        sa.Column("reference", sa.String(32), nullable=False),
        sa.Column("expected_fen", sa.BigInteger(), nullable=False),
        sa.Column("received_fen", sa.BigInteger(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        _fk(t, "tenant_id", "tenants"), _fk(t, "order_id", "orders"), _fk(t, "member_id", "members"),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{t}")),
        sa.UniqueConstraint("tenant_id", "order_id", name=op.f(f"uq_{t}_tenant_id_order_id")),
        sa.CheckConstraint("received_fen >= 0 AND received_fen <= expected_fen", name=op.f("ck_b2b_transfers_received")),
    )
    op.create_index(f"ix_{t}_tenant_id", t, ["tenant_id"])
    t = "b2b_transfer_receipts"
    op.create_table(
        t,
        sa.Column("id", ID, nullable=False),
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("transfer_id", ID, nullable=False),
        sa.Column("serial", sa.String(64), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        _fk(t, "tenant_id", "tenants"), _fk(t, "transfer_id", "b2b_transfers"),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{t}")),
        sa.UniqueConstraint("tenant_id", "serial", name=op.f(f"uq_{t}_tenant_id_serial")),
        sa.CheckConstraint("amount_fen > 0", name=op.f("ck_b2b_transfer_receipts_amount")),
    )
    op.create_index(f"ix_{t}_tenant_id", t, ["tenant_id"])
    op.create_index(f"ix_{t}_transfer_id", t, ["transfer_id"])


def downgrade() -> None:
    op.drop_table("b2b_transfer_receipts")
    op.drop_table("b2b_transfers")
    op.drop_table("b2b_shop_terms")
