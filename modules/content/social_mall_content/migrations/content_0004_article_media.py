"""content: articles uploaded to an official account for 图文 (mpnews) broadcasts

Revision ID: content_0004
Revises: content_0003
"""
from alembic import op
import sqlalchemy as sa

revision = "content_0004"
down_revision = "content_0003"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    t = "content_article_media"
    op.create_table(
        t,
        sa.Column("id", ID, nullable=False),
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("article_id", ID, nullable=False),
        sa.Column("app_id", sa.String(64), nullable=False),
        sa.Column("thumb_media_id", sa.String(128), nullable=False),
        sa.Column("media_id", sa.String(128), nullable=False),
        sa.Column("article_updated_at", TS, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f(f"fk_{t}_tenant_id_tenants")),
        sa.ForeignKeyConstraint(["article_id"], ["content_articles.id"], name=op.f(f"fk_{t}_article_id_content_articles")),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{t}")),
        sa.UniqueConstraint("tenant_id", "article_id", "app_id", name=op.f(f"uq_{t}_tenant_id_article_id_app_id")),
    )


def downgrade() -> None:
    op.drop_table("content_article_media")
