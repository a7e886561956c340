"""local_services: stores and members' chosen stores

Revision ID: local_0001
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa

revision = "local_0001"
down_revision = "0002"
branch_labels = ("local_services",)
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "local_stores",
        sa.Column("id", ID, nullable=False),
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("name", sa.String(40), nullable=False),
        sa.Column("address", sa.String(200), nullable=False),
        sa.Column("phone", sa.String(20), nullable=False),
        sa.Column("lat_e6", sa.Integer(), nullable=False),
        sa.Column("lng_e6", sa.Integer(), nullable=False),
        sa.Column("hours", sa.JSON(), nullable=False),
        sa.Column("exceptions", sa.JSON(), nullable=False),
        sa.Column("pictures", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_local_stores_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_local_stores")),
    )
    op.create_index("ix_local_stores_tenant_id", "local_stores", ["tenant_id"])
    op.create_index("ix_local_stores_geo", "local_stores", ["tenant_id", "lat_e6", "lng_e6"])
    op.create_table(
        "local_member_stores",
        sa.Column("id", ID, nullable=False),
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("member_id", ID, nullable=False),
        sa.Column("store_id", ID, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_local_member_stores_tenant_id_tenants")),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], name=op.f("fk_local_member_stores_member_id_members")),
        sa.ForeignKeyConstraint(["store_id"], ["local_stores.id"],
                                name=op.f("fk_local_member_stores_store_id_local_stores")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_local_member_stores")),
        sa.UniqueConstraint("tenant_id", "member_id", name=op.f("uq_local_member_stores_tenant_id_member_id")),
    )
    op.create_index("ix_local_member_stores_tenant_id", "local_member_stores", ["tenant_id"])


def downgrade() -> None:
    op.drop_table("local_member_stores")
    op.drop_table("local_stores")
