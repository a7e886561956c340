"""insights: events (partitioned by month on PostgreSQL), member facts, daily rollups,
settings, segments, campaigns, sends, opt-outs

Revision ID: insights_0001
Revises: i24_0001
"""
from alembic import op
import sqlalchemy as sa

revision = "insights_0001"
down_revision = "i24_0001"
branch_labels = ("insights",)
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)

PG_EVENTS = """
CREATE TABLE insights_events (
  id BIGSERIAL NOT NULL,
  tenant_id BIGINT NOT NULL,
  member_id BIGINT NOT NULL,
  at TIMESTAMPTZ NOT NULL,
  kind VARCHAR(32) NOT NULL,
  channel VARCHAR(16) NOT NULL DEFAULT '',
  source VARCHAR(64) NOT NULL DEFAULT '',
  ref BIGINT NOT NULL DEFAULT 0,
  amount_fen BIGINT NOT NULL DEFAULT 0,
  props JSON NOT NULL DEFAULT '{}',
  CONSTRAINT pk_insights_events PRIMARY KEY (id, at)
) PARTITION BY RANGE (at)
"""


def upgrade() -> None:
    pg = op.get_bind().dialect.name == "postgresql"
    if pg:
        op.execute(PG_EVENTS)
        # rows of a month with no partition yet land here (partitions.py moves them out)
        op.execute("CREATE TABLE insights_events_default PARTITION OF insights_events DEFAULT")
    else:
        op.create_table(
            "insights_events",
            sa.Column("id", ID, primary_key=True),
            sa.Column("tenant_id", sa.BigInteger(), nullable=False),
            sa.Column("member_id", sa.BigInteger(), nullable=False),
            sa.Column("at", TS, nullable=False),
            sa.Column("kind", sa.String(32), nullable=False),
            sa.Column("channel", sa.String(16), nullable=False, server_default=""),
            sa.Column("source", sa.String(64), nullable=False, server_default=""),
            sa.Column("ref", sa.BigInteger(), nullable=False, server_default="0"),
            sa.Column("amount_fen", sa.BigInteger(), nullable=False, server_default="0"),
            sa.Column("props", sa.JSON(), nullable=False),
        )
    op.create_index("ix_insights_events_tenant_at", "insights_events", ["tenant_id", "at"])
    op.create_index("ix_insights_events_member", "insights_events", ["tenant_id", "member_id", "at"])
    op.create_index("ix_insights_events_kind", "insights_events", ["tenant_id", "kind", "at"])
    if pg:
        from datetime import datetime, timezone

        from social_mall_insights.partitions import month_ddl

        now = datetime.now(timezone.utc)
        for k in range(0, 3):
            for stmt in month_ddl(now.year, now.month + k):
                op.execute(stmt)

    op.create_table(
        "insights_members",
        sa.Column("id", ID, primary_key=True),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("first_seen_at", TS, nullable=False),
        sa.Column("first_channel", sa.String(16), nullable=False),
        sa.Column("acq_kind", sa.String(16), nullable=False),
        sa.Column("acq_source", sa.String(64), nullable=False),
        sa.Column("referrer_id", sa.BigInteger(), nullable=False),
        sa.Column("first_order_at", TS, nullable=True),
        sa.Column("last_order_at", TS, nullable=True),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("paid_fen", sa.BigInteger(), nullable=False),
        sa.Column("refunded_fen", sa.BigInteger(), nullable=False),
        sa.Column("last_seen_at", TS, nullable=True),
        sa.Column("first_seen_week", sa.Date(), nullable=True),
        sa.Column("first_order_week", sa.Date(), nullable=True),
        sa.Column("ltv30", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("ltv90", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("ltv180", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("ltv365", sa.BigInteger(), nullable=False, server_default="0"),
        sa.UniqueConstraint("tenant_id", "member_id", name="uq_insights_members_tenant_id_member_id"),
    )
    op.create_table(
        "insights_member_weeks",
        sa.Column("id", ID, primary_key=True),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("week", sa.Date(), nullable=False),
        sa.UniqueConstraint("tenant_id", "member_id", "week", name="uq_insights_member_weeks_tenant_id_member_id_week"),
    )
    op.create_index("ix_insights_members_first_order", "insights_members", ["tenant_id", "first_order_at"])
    op.create_table(
        "insights_delivered",
        sa.Column("id", ID, primary_key=True, autoincrement=False),
        sa.Column("at", TS, nullable=False),
    )
    op.create_table(
        "insights_daily",
        sa.Column("id", ID, primary_key=True),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("events", sa.BigInteger(), nullable=False),
        sa.Column("members", sa.BigInteger(), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.UniqueConstraint("tenant_id", "day", "channel", "source", "kind", name="uq_insights_daily_tenant_id_day_channel_source_kind"),
    )
    op.create_table(
        "insights_settings",
        sa.Column("id", ID, primary_key=True),
        sa.Column("tenant_id", ID, sa.ForeignKey("tenants.id"), nullable=False, unique=True),
        sa.Column("retention_days", sa.Integer(), nullable=False),
        sa.Column("template_id", sa.String(64), nullable=False),
        sa.Column("quiet_start", sa.Integer(), nullable=False),
        sa.Column("quiet_end", sa.Integer(), nullable=False),
        sa.Column("weekly_cap", sa.Integer(), nullable=False),
    )
    op.create_table(
        "insights_segments",
        sa.Column("id", ID, primary_key=True),
        sa.Column("tenant_id", ID, sa.ForeignKey("tenants.id"), nullable=False, index=True),
        sa.Column("name", sa.String(40), nullable=False),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "insights_campaigns",
        sa.Column("id", ID, primary_key=True),
        sa.Column("tenant_id", ID, sa.ForeignKey("tenants.id"), nullable=False, index=True),
        sa.Column("segment_id", ID, sa.ForeignKey("insights_segments.id"), nullable=False),
        sa.Column("name", sa.String(40), nullable=False),
        sa.Column("text", sa.String(600), nullable=False),
        sa.Column("url", sa.String(300), nullable=False),
        sa.Column("send_at", TS, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("form_key", sa.String(40), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("tenant_id", "form_key", name="uq_insights_campaigns_tenant_id_form_key"),
    )
    op.create_table(
        "insights_sends",
        sa.Column("id", ID, primary_key=True),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("campaign_id", ID, sa.ForeignKey("insights_campaigns.id"), nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("via", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("msg_id", sa.BigInteger(), nullable=False),
        sa.Column("emitted_at", TS, nullable=True),
        sa.Column("sent_at", TS, nullable=True),
        sa.Column("delivered", sa.Boolean(), nullable=False),
        sa.Column("opened_at", TS, nullable=True),
        sa.UniqueConstraint("campaign_id", "member_id", name="uq_insights_sends_campaign_id_member_id"),
    )
    op.create_index("ix_insights_sends_member", "insights_sends", ["tenant_id", "member_id", "sent_at"])
    op.create_index("ix_insights_sends_msg", "insights_sends", ["tenant_id", "msg_id"])
    op.create_table(
        "insights_optouts",
        sa.Column("id", ID, primary_key=True),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.UniqueConstraint("tenant_id", "member_id", name="uq_insights_optouts_tenant_id_member_id"),
    )


def downgrade() -> None:
    for t in ("insights_member_weeks", "insights_optouts", "insights_sends", "insights_campaigns", "insights_segments",
              "insights_settings", "insights_daily", "insights_delivered", "insights_members", "insights_events"):
        op.drop_table(t)
