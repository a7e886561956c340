"""content: broadcasts (群发), their recipients (the monthly quota), previewers

Revision ID: content_0002
Revises: content_0001
"""
from alembic import op
import sqlalchemy as sa

revision = "content_0002"
down_revision = "content_0001"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    t = "content_broadcasts"
    op.create_table(
        t,
        sa.Column("id", ID, nullable=False),
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("key", sa.String(40), nullable=False),
        sa.Column("article_id", sa.BigInteger(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("segment", sa.String(40), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("scheduled_at", TS, nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("sent_at", TS, nullable=True),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("msg_id", sa.BigInteger(), nullable=True),
        sa.Column("error", sa.String(200), nullable=False),
        sa.Column("finished_at", TS, nullable=True),
        sa.Column("result", sa.String(64), nullable=False),
        sa.Column("total_count", sa.Integer(), nullable=False),
        sa.Column("sent_count", sa.Integer(), nullable=False),
        sa.Column("error_count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f(f"fk_{t}_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{t}")),
        sa.UniqueConstraint("tenant_id", "key", name=op.f(f"uq_{t}_tenant_id_key")),
    )
    op.create_index(f"ix_{t}_tenant_id", t, ["tenant_id"])
    op.create_index("ix_content_broadcasts_due", t, ["status", "scheduled_at"])
    op.create_index("ix_content_broadcasts_msg", t, ["tenant_id", "msg_id"])
    r = "content_broadcast_recipients"
    op.create_table(
        r,
        sa.Column("id", ID, nullable=False),
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("broadcast_id", ID, nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f(f"fk_{r}_tenant_id_tenants")),
        sa.ForeignKeyConstraint(["broadcast_id"], ["content_broadcasts.id"],
                                name=op.f(f"fk_{r}_broadcast_id_content_broadcasts")),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{r}")),
        sa.UniqueConstraint("broadcast_id", "member_id", name=op.f(f"uq_{r}_broadcast_id_member_id")),
    )
    op.create_index("ix_content_recipients_quota", r, ["tenant_id", "member_id", "month"])
    p = "content_previewers"
    op.create_table(
        p,
        sa.Column("id", ID, nullable=False),
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("admin_id", sa.BigInteger(), nullable=False),
        sa.Column("openid", sa.String(128), nullable=False),
        sa.Column("code", sa.String(16), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("code_expires_at", TS, nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f(f"fk_{p}_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{p}")),
        sa.UniqueConstraint("admin_id", name=op.f(f"uq_{p}_admin_id")),
    )
    op.create_index("ix_content_previewers_code", p, ["tenant_id", "code"])


def downgrade() -> None:
    op.drop_table("content_previewers")
    op.drop_table("content_broadcast_recipients")
    op.drop_table("content_broadcasts")
