"""content: a broadcast goes out from every official account of the tenant (one mass send
each); recipients and the preview binding remember their account

Revision ID: content_0005
Revises: content_0004
"""
from alembic import op
import sqlalchemy as sa

revision = "content_0005"
down_revision = "content_0004"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    t = "content_broadcast_sends"
    op.create_table(
        t,
        sa.Column("id", ID, nullable=False),
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("broadcast_id", ID, nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.Column("client_msg_id", sa.String(64), nullable=False),
        sa.Column("wechat_tag_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("msg_id", sa.BigInteger(), nullable=True),
        sa.Column("error", sa.String(200), nullable=False),
        sa.Column("finished_at", TS, nullable=True),
        sa.Column("result", sa.String(64), nullable=False),
        sa.Column("total_count", sa.Integer(), nullable=False),
        sa.Column("sent_count", sa.Integer(), nullable=False),
        sa.Column("error_count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f(f"fk_{t}_tenant_id_tenants")),
        sa.ForeignKeyConstraint(["broadcast_id"], ["content_broadcasts.id"],
                                name=op.f(f"fk_{t}_broadcast_id_content_broadcasts")),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{t}")),
        sa.UniqueConstraint("broadcast_id", "account_id", name=op.f(f"uq_{t}_broadcast_id_account_id")),
    )
    op.create_index("ix_content_broadcast_sends_msg", t, ["tenant_id", "msg_id"])
    with op.batch_alter_table("content_broadcast_recipients") as b:
        b.add_column(sa.Column("account_id", sa.BigInteger(), nullable=False, server_default="0"))
    with op.batch_alter_table("content_previewers") as b:
        b.add_column(sa.Column("account_id", sa.BigInteger(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("content_previewers") as b:
        b.drop_column("account_id")
    with op.batch_alter_table("content_broadcast_recipients") as b:
        b.drop_column("account_id")
    op.drop_index("ix_content_broadcast_sends_msg", "content_broadcast_sends")
    op.drop_table("content_broadcast_sends")
