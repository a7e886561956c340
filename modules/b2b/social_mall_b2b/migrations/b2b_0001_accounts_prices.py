"""b2b: customer groups, business accounts, price lists with quantity tiers, SKU order terms

Revision ID: b2b_0001
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa

revision = "b2b_0001"
down_revision = "0002"
branch_labels = ("b2b",)
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def _base(t: str) -> list[sa.Column[int]]:
    return [
        sa.Column("id", ID, nullable=False),
        sa.Column("tenant_id", ID, nullable=False),
    ]


def _keys(t: str) -> list[sa.Constraint]:
    return [
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f(f"fk_{t}_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{t}")),
    ]


def upgrade() -> None:
    t = "b2b_groups"
    op.create_table(
        t, *_base(t),
        sa.Column("name", sa.String(40), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        *_keys(t),
        sa.UniqueConstraint("tenant_id", "name", name=op.f(f"uq_{t}_tenant_id_name")),
    )
    op.create_index(f"ix_{t}_tenant_id", t, ["tenant_id"])
    t = "b2b_companies"
    op.create_table(
        t, *_base(t),
        sa.Column("owner_member_id", ID, nullable=False),
        sa.Column("name", sa.String(60), nullable=False),
        sa.Column("uscc", sa.String(18), nullable=False),
        sa.Column("contact_name", sa.String(20), nullable=False),
        sa.Column("contact_phone", sa.String(20), nullable=False),
        sa.Column("invoice_title", sa.String(60), nullable=False),
        sa.Column("invoice_tax_no", sa.String(20), nullable=False),
        sa.Column("invoice_bank", sa.String(100), nullable=False),
        sa.Column("invoice_address", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("group_id", ID, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("decided_at", TS, nullable=True),
        sa.Column("decided_by", sa.String(64), nullable=False),
        *_keys(t),
        sa.ForeignKeyConstraint(["owner_member_id"], ["members.id"], name=op.f(f"fk_{t}_owner_member_id_members")),
        sa.ForeignKeyConstraint(["group_id"], ["b2b_groups.id"], name=op.f(f"fk_{t}_group_id_b2b_groups")),
        sa.UniqueConstraint("tenant_id", "owner_member_id", name=op.f(f"uq_{t}_tenant_id_owner_member_id")),
        sa.UniqueConstraint("tenant_id", "uscc", name=op.f(f"uq_{t}_tenant_id_uscc")),
    )
    op.create_index(f"ix_{t}_tenant_id", t, ["tenant_id"])
    t = "b2b_price_lists"
    op.create_table(
        t, *_base(t),
        sa.Column("name", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("group_id", ID, nullable=True),
        sa.Column("company_id", ID, nullable=True),
        sa.Column("percent_off_bp", sa.Integer(), nullable=False),
        sa.Column("starts_at", TS, nullable=True),
        sa.Column("ends_at", TS, nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        *_keys(t),
        sa.ForeignKeyConstraint(["group_id"], ["b2b_groups.id"], name=op.f(f"fk_{t}_group_id_b2b_groups")),
        sa.ForeignKeyConstraint(["company_id"], ["b2b_companies.id"], name=op.f(f"fk_{t}_company_id_b2b_companies")),
        sa.CheckConstraint("percent_off_bp >= 0 AND percent_off_bp < 10000", name=op.f("ck_b2b_price_lists_percent")),
    )
    op.create_index(f"ix_{t}_tenant_id", t, ["tenant_id"])
    t = "b2b_list_prices"
    op.create_table(
        t, *_base(t),
        sa.Column("list_id", ID, nullable=False),
        sa.Column("sku_id", ID, nullable=False),
        sa.Column("min_qty", sa.Integer(), nullable=False),
        sa.Column("price_fen", sa.BigInteger(), nullable=False),
        *_keys(t),
        sa.ForeignKeyConstraint(["list_id"], ["b2b_price_lists.id"], name=op.f(f"fk_{t}_list_id_b2b_price_lists")),
        sa.ForeignKeyConstraint(["sku_id"], ["skus.id"], name=op.f(f"fk_{t}_sku_id_skus")),
        sa.UniqueConstraint("list_id", "sku_id", "min_qty", name=op.f(f"uq_{t}_list_id_sku_id_min_qty")),
        sa.CheckConstraint("price_fen > 0 AND min_qty >= 1", name=op.f("ck_b2b_list_prices_positive")),
    )
    op.create_index(f"ix_{t}_tenant_id", t, ["tenant_id"])
    op.create_index(f"ix_{t}_list_id", t, ["list_id"])
    t = "b2b_sku_terms"
    op.create_table(
        t, *_base(t),
        sa.Column("sku_id", ID, nullable=False),
        sa.Column("moq", sa.Integer(), nullable=False),
        sa.Column("case_pack", sa.Integer(), nullable=False),
        *_keys(t),
        sa.ForeignKeyConstraint(["sku_id"], ["skus.id"], name=op.f(f"fk_{t}_sku_id_skus")),
        sa.UniqueConstraint("tenant_id", "sku_id", name=op.f(f"uq_{t}_tenant_id_sku_id")),
        sa.CheckConstraint("moq >= 1 AND case_pack >= 1", name=op.f("ck_b2b_sku_terms_positive")),
    )
    op.create_index(f"ix_{t}_tenant_id", t, ["tenant_id"])


def downgrade() -> None:
    for t in ("b2b_sku_terms", "b2b_list_prices", "b2b_price_lists", "b2b_companies", "b2b_groups"):
        op.drop_table(t)
