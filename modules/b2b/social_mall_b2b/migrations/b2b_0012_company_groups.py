"""b2b: a company in several customer groups (b2b_company_groups replaces b2b_companies.group_id)

The old column stays, emptied and no longer read or written: SQLite can't drop a column a
foreign key uses without rebuilding b2b_companies, which other tables reference (the
rebuild's DROP TABLE fails with foreign keys on).

Revision ID: b2b_0012
Revises: b2b_0011
"""
from alembic import op
import sqlalchemy as sa

revision = "b2b_0012"
down_revision = "b2b_0011"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _fk(t: str, col: str, ref: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([col], [f"{ref}.id"], name=op.f(f"fk_{t}_{col}_{ref}"))


def upgrade() -> None:
    t = "b2b_company_groups"
    op.create_table(
        t,
        sa.Column("id", ID, nullable=False),
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("company_id", ID, nullable=False),
        sa.Column("group_id", ID, nullable=False),
        _fk(t, "tenant_id", "tenants"), _fk(t, "company_id", "b2b_companies"), _fk(t, "group_id", "b2b_groups"),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{t}")),
        sa.UniqueConstraint("company_id", "group_id", name=op.f(f"uq_{t}_company_id_group_id")),
    )
    op.create_index(f"ix_{t}_tenant_id", t, ["tenant_id"])
    # Each company's one group becomes its first membership.
    op.execute("INSERT INTO b2b_company_groups (tenant_id, company_id, group_id) "
               "SELECT tenant_id, id, group_id FROM b2b_companies WHERE group_id IS NOT NULL")
    op.execute("UPDATE b2b_companies SET group_id = NULL")


def downgrade() -> None:
    # Back to one group: the lowest-numbered of each company's.
    op.execute("UPDATE b2b_companies SET group_id = (SELECT MIN(g.group_id) FROM b2b_company_groups g "
               "WHERE g.company_id = b2b_companies.id)")
    op.drop_table("b2b_company_groups")
