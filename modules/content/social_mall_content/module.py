"""What the module registers: templates, the 「最新活动」 and 「预览绑定」 flow and its menu entry,
the console pages (图文, 群发) and the H5 article page, MASSSENDJOBFINISH (an account event)
and the job that sends scheduled broadcasts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from social_mall.plugins import Registry
from social_mall_content import HERE, broadcasts, demo, flow, sender, web, web_broadcasts


def setup(reg: Registry) -> None:
    svc = reg.services
    reg.add_templates(HERE / "templates")
    reg.add_flow(flow.FLOW)
    reg.add_demo(demo.seed)
    web.register(reg)
    web_broadcasts.register(reg)

    async def job_finished(tenant_id: int, fields: Mapping[str, Any]) -> None:
        async with svc.uows() as uow:
            if await broadcasts.job_finished(uow, tenant_id, fields, svc.clock()):
                await uow.commit()

    async def due() -> int:
        return await sender.dispatch_due(svc)

    reg.add_account_event("MASSSENDJOBFINISH", job_finished)
    reg.add_job("content.broadcasts_due", 60.0, due)
