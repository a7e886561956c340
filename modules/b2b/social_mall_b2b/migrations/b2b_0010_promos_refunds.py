"""b2b: per-tenant promotion rules for 企业价 lines; offline refunds (transfer / credit)

Revision ID: b2b_0010
Revises: b2b_0009
"""
from alembic import op
import sqlalchemy as sa

revision = "b2b_0010"
down_revision = "b2b_0009"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def _fk(t: str, col: str, ref: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([col], [f"{ref}.id"], name=op.f(f"fk_{t}_{col}_{ref}"))


def upgrade() -> None:
    t = "b2b_promo_rules"
    op.create_table(
        t,
        sa.Column("id", ID, nullable=False),
        sa.Column("tenant_id", ID, nullable=False),
        *(sa.Column(c, sa.Boolean(), nullable=False) for c in ("level", "flash", "full", "coupon", "points")),
        _fk(t, "tenant_id", "tenants"),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{t}")),
        sa.UniqueConstraint("tenant_id", name=op.f(f"uq_{t}_tenant_id")),
    )
    op.create_index(f"ix_{t}_tenant_id", t, ["tenant_id"])
    t = "b2b_offline_refunds"
    op.create_table(
        t,
        sa.Column("id", ID, nullable=False),
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("order_id", ID, nullable=False),
        sa.Column("out_refund_no", sa.String(64), nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("bank_ref", sa.String(64), nullable=True),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("confirmed_at", TS, nullable=True),
        _fk(t, "tenant_id", "tenants"), _fk(t, "order_id", "orders"),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{t}")),
        sa.UniqueConstraint("tenant_id", "out_refund_no", name=op.f(f"uq_{t}_tenant_id_out_refund_no")),
        sa.UniqueConstraint("tenant_id", "bank_ref", name=op.f(f"uq_{t}_tenant_id_bank_ref")),
        sa.CheckConstraint("amount_fen > 0", name=op.f("ck_b2b_offline_refunds_amount")),
    )
    op.create_index(f"ix_{t}_tenant_id", t, ["tenant_id"])
    op.create_index(f"ix_{t}_order_id", t, ["order_id"])


def downgrade() -> None:
    op.drop_table("b2b_offline_refunds")
    op.drop_table("b2b_promo_rules")
