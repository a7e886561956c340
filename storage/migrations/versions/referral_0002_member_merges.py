"""referral: member merges applied (once per merged member; where a merged
distributor's code leads)

Revision ID: referral_0002
Revises: referral_0001
"""
from alembic import op
import sqlalchemy as sa

revision = "referral_0002"
down_revision = "referral_0001"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
T = "referral_merges"


def upgrade() -> None:
    op.create_table(
        T,
        sa.Column("id", ID, nullable=False),
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("merged_member_id", ID, nullable=False),
        sa.Column("kept_member_id", ID, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f(f"fk_{T}_tenant_id_tenants")),
        sa.ForeignKeyConstraint(["merged_member_id"], ["members.id"],
                                name=op.f(f"fk_{T}_merged_member_id_members")),
        sa.ForeignKeyConstraint(["kept_member_id"], ["members.id"], name=op.f(f"fk_{T}_kept_member_id_members")),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{T}")),
        sa.UniqueConstraint("tenant_id", "merged_member_id", name=op.f(f"uq_{T}_tenant_id_merged_member_id")),
    )
    op.create_index(op.f(f"ix_{T}_tenant_id"), T, ["tenant_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f(f"ix_{T}_tenant_id"), table_name=T)
    op.drop_table(T)
