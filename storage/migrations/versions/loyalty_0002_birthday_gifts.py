"""loyalty: birthday gifts (once per member per year)

Revision ID: loyalty_0002
Revises: loyalty_0001
"""
from alembic import op
import sqlalchemy as sa

revision = "loyalty_0002"
down_revision = "loyalty_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "loyalty_birthday_gifts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("tenant_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("member_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("coupons", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"],
                                name=op.f("fk_loyalty_birthday_gifts_tenant_id_tenants")),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"],
                                name=op.f("fk_loyalty_birthday_gifts_member_id_members")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loyalty_birthday_gifts")),
        sa.UniqueConstraint("tenant_id", "member_id", "year",
                            name=op.f("uq_loyalty_birthday_gifts_tenant_id_member_id_year")),
    )
    op.create_index(op.f("ix_loyalty_birthday_gifts_tenant_id"), "loyalty_birthday_gifts", ["tenant_id"],
                    unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_loyalty_birthday_gifts_tenant_id"), table_name="loyalty_birthday_gifts")
    op.drop_table("loyalty_birthday_gifts")
