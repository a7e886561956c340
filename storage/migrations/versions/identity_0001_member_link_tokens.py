"""identity: one-time links that attach a second channel identity to a member

Revision ID: identity_0001
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa

revision = "identity_0001"
down_revision = "0001"
branch_labels = ("identity",)
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    t = "member_link_tokens"
    op.create_table(
        t,
        sa.Column("id", _ID, nullable=False),
        sa.Column("tenant_id", _ID, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("member_id", _ID, nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=False),
        sa.Column("purpose", sa.String(length=40), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.Column("used_at", _TS, nullable=True),
        sa.Column("used_by_channel", sa.String(length=16), nullable=False),
        sa.Column("result", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f(f"fk_{t}_tenant_id_tenants")),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], name=op.f(f"fk_{t}_member_id_members")),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{t}")),
        sa.UniqueConstraint("tenant_id", "token_hash", name=op.f(f"uq_{t}_tenant_id_token_hash")),
    )
    op.create_index(op.f(f"ix_{t}_tenant_id"), t, ["tenant_id"], unique=False)
    op.create_index("ix_member_link_tokens_identity", t, ["tenant_id", "channel", "external_id"], unique=False)


def downgrade() -> None:
    t = "member_link_tokens"
    op.drop_index("ix_member_link_tokens_identity", table_name=t)
    op.drop_index(op.f(f"ix_{t}_tenant_id"), table_name=t)
    op.drop_table(t)
