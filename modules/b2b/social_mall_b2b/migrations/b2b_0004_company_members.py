"""b2b: a company's buyers and the owner's invite codes

Revision ID: b2b_0004
Revises: b2b_0003
"""
from alembic import op
import sqlalchemy as sa

revision = "b2b_0004"
down_revision = "b2b_0003"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    t = "b2b_company_members"
    op.create_table(
        t,
        sa.Column("id", ID, nullable=False),
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("company_id", ID, nullable=False),
        sa.Column("member_id", ID, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f(f"fk_{t}_tenant_id_tenants")),
        sa.ForeignKeyConstraint(["company_id"], ["b2b_companies.id"], name=op.f(f"fk_{t}_company_id_b2b_companies")),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], name=op.f(f"fk_{t}_member_id_members")),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{t}")),
        sa.UniqueConstraint("tenant_id", "member_id", name=op.f(f"uq_{t}_tenant_id_member_id")),
    )
    op.create_index(f"ix_{t}_tenant_id", t, ["tenant_id"])
    t = "b2b_invites"
    op.create_table(
        t,
        sa.Column("id", ID, nullable=False),
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("company_id", ID, nullable=False),
        sa.Column("selector", sa.String(2), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("used_by", ID, nullable=True),
        sa.Column("used_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f(f"fk_{t}_tenant_id_tenants")),
        sa.ForeignKeyConstraint(["company_id"], ["b2b_companies.id"], name=op.f(f"fk_{t}_company_id_b2b_companies")),
        sa.ForeignKeyConstraint(["used_by"], ["members.id"], name=op.f(f"fk_{t}_used_by_members")),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{t}")),
    )
    op.create_index(f"ix_{t}_tenant_id", t, ["tenant_id"])


def downgrade() -> None:
    op.drop_table("b2b_invites")
    op.drop_table("b2b_company_members")
