"""loyalty: bind codes stored as selector + SHA-256 (issue #17 item 8)

The 6-digit code column (unique per tenant) becomes a 2-character selector (indexed, not
unique) and the SHA-256 of the whole 10-character code. Bind codes live 10 minutes, so
the table is recreated empty: a code issued before the upgrade is simply asked for again.

Revision ID: sec17_codesevents_0001
Revises: loyalty_0002
"""
from alembic import op
import sqlalchemy as sa

revision = "sec17_codesevents_0001"
down_revision = "sec17_money_0001"  # after the 64-bit merge: one head
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _common() -> list[sa.Column | sa.Constraint]:
    return [
        sa.Column("id", ID, nullable=False),
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("member_id", ID, nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], name=op.f("fk_loyalty_bind_codes_member_id_members")),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_loyalty_bind_codes_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loyalty_bind_codes")),
    ]


def _drop() -> None:
    op.drop_index(op.f("ix_loyalty_bind_codes_tenant_id"), table_name="loyalty_bind_codes")
    op.drop_table("loyalty_bind_codes")


def upgrade() -> None:
    _drop()
    op.create_table(
        "loyalty_bind_codes",
        *_common(),
        sa.Column("selector", sa.String(length=4), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
    )
    op.create_index(op.f("ix_loyalty_bind_codes_tenant_id"), "loyalty_bind_codes", ["tenant_id"], unique=False)
    op.create_index("ix_loyalty_bind_codes_lookup", "loyalty_bind_codes", ["tenant_id", "selector"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_loyalty_bind_codes_lookup", table_name="loyalty_bind_codes")
    _drop()
    op.create_table(
        "loyalty_bind_codes",
        *_common(),
        sa.Column("code", sa.String(length=12), nullable=False),
        sa.UniqueConstraint("tenant_id", "code", name=op.f("uq_loyalty_bind_codes_tenant_id_code")),
    )
    op.create_index(op.f("ix_loyalty_bind_codes_tenant_id"), "loyalty_bind_codes", ["tenant_id"], unique=False)
