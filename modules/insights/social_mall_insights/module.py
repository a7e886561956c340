"""What the module registers: the activity sink (recorder.py), the outbox subscribers for
domain events (subscribers.py), jobs, console pages (web_console.py), the member page's
timeline, the campaigns' sending and WeChat's template-send reports, 「消息设置」/「退订」 in
chat (flow_prefs.py).

Jobs:
  insights.flush        every 2 s: write the buffered activity
  insights.rollup       every 10 min: today's and yesterday's daily rollups
  insights.partitions   daily: monthly partitions three months ahead (PostgreSQL)
  insights.retention    daily: raw events past each tenant's retention (PostgreSQL: whole
                        month partitions no tenant keeps are dropped first)
  insights.campaigns    every 60 s: due campaigns, in batches, outside quiet hours
  insights.segment_tags hourly: segments with a tag tag exactly their members (a deleted
                        tag, member_tag.deleted, is let go of; a rule naming it keeps its
                        name and holds nobody; the tag list names the rule)
"""

from __future__ import annotations

from handlers.context import Services
from social_mall.plugins import Delivery, Registry
from social_mall_insights import HERE, campaigns, flow_prefs, partitions, rollup, segments, subscribers, web_console
from social_mall_insights.recorder import Recorder

FLUSH_SECONDS = 2.0


def setup(reg: Registry) -> None:
    svc: Services = reg.services
    reg.add_templates(HERE / "templates")
    recorder = Recorder(lambda: svc.uows)
    reg.add_activity_sink(recorder)
    subscribers.register(reg, lambda: svc.uows, svc.clock, recorder.known)

    async def flush() -> int:
        return await recorder.flush()

    async def roll() -> int:
        await recorder.flush()
        async with svc.uows() as uow:
            n = await rollup.rollup_recent(uow, svc.clock())
            await uow.commit()
        return n

    async def ahead() -> list[str]:
        async with svc.uows() as uow:
            made = await partitions.ensure_ahead(uow.session, svc.clock())
            await uow.commit()
        return made

    async def retention() -> int:
        async with svc.uows() as uow:   # whole months first (PostgreSQL), in a transaction of their own
            await rollup.drop_expired_months(uow, svc.clock())
            await uow.commit()
        async with svc.uows() as uow:
            n = await rollup.apply_retention(uow, svc.clock())
            await uow.commit()
        return n

    async def segment_tags() -> int:
        async with svc.uows() as uow:
            n = await segments.sync_tags(uow, svc.clock(), reg.member_groups)
            await uow.commit()
        return n

    reg.add_job("insights.flush", FLUSH_SECONDS, flush)
    reg.add_job("insights.rollup", 600, roll)
    reg.add_job("insights.partitions", 86400, ahead)
    reg.add_job("insights.retention", 86400, retention)
    async def tag_deleted(d: Delivery) -> None:
        async with svc.uows() as uow:
            tag_id = int(d.payload.get("tag_id", 0))
            await segments.let_go_of_tag(uow, d.tenant_id, tag_id)
            await segments.forget_tag(uow, d.tenant_id, tag_id, str(d.payload.get("name", "")))
            await uow.commit()

    reg.add_job("insights.segment_tags", 3600, segment_tags)
    reg.subscribe("member_tag.deleted", "insights.segment_tags", tag_deleted)
    reg.add_tag_rules(segments.tag_rules)
    campaigns.register(reg, svc)
    reg.add_flow(flow_prefs.FLOW)
    web_console.register(reg)
