"""intelligence: product views (per hour, per member) from the activity sink; recommendation
clicks; purchases' places and popularity per place (location cold start)

Revision ID: intel_0005
Revises: intel_0004
"""
from alembic import op
import sqlalchemy as sa

revision = "intel_0005"
down_revision = "intel_0004"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    t = "intel_view_hours"
    op.create_table(
        t,
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("product_id", sa.BigInteger(), nullable=False),
        sa.Column("hour", TS, nullable=False),
        sa.Column("views", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f(f"fk_{t}_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("tenant_id", "product_id", "hour", name=op.f(f"pk_{t}")),
    )
    t = "intel_member_views"
    op.create_table(
        t,
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("product_id", sa.BigInteger(), nullable=False),
        sa.Column("views", sa.BigInteger(), nullable=False),
        sa.Column("last_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f(f"fk_{t}_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("tenant_id", "member_id", "product_id", name=op.f(f"pk_{t}")),
    )
    t = "intel_clicks"
    op.create_table(
        t,
        sa.Column("id", ID, nullable=False),
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("product_id", sa.BigInteger(), nullable=False),
        sa.Column("placement", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f(f"fk_{t}_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{t}")),
    )
    op.create_index("ix_intel_clicks_at", t, ["tenant_id", "at"])
    op.add_column("intel_interactions", sa.Column("places", sa.String(120), nullable=False, server_default=""))
    t = "intel_popular_places"
    op.create_table(
        t,
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("place", sa.String(60), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.BigInteger(), nullable=False),
        sa.Column("buyers", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f(f"fk_{t}_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("tenant_id", "place", "rank", name=op.f(f"pk_{t}")),
    )


def downgrade() -> None:
    op.drop_table("intel_popular_places")
    with op.batch_alter_table("intel_interactions") as b:
        b.drop_column("places")
    op.drop_index("ix_intel_clicks_at", table_name="intel_clicks")
    op.drop_table("intel_clicks")
    op.drop_table("intel_member_views")
    op.drop_table("intel_view_hours")
