"""content: articles

Revision ID: content_0001
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa

revision = "content_0001"
down_revision = "0002"
branch_labels = ("content",)
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    t = "content_articles"
    op.create_table(
        t,
        sa.Column("id", ID, nullable=False),
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("title", sa.String(64), nullable=False),
        sa.Column("digest", sa.String(120), nullable=False),
        sa.Column("cover", sa.String(512), nullable=False),
        sa.Column("body_html", sa.Text(), nullable=False),
        sa.Column("product_ids", sa.JSON(), nullable=False),
        sa.Column("published", sa.Boolean(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f(f"fk_{t}_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{t}")),
    )
    op.create_index(f"ix_{t}_tenant_id", t, ["tenant_id"])
    op.create_index("ix_content_articles_latest", t, ["tenant_id", "published", "id"])


def downgrade() -> None:
    op.drop_table("content_articles")
