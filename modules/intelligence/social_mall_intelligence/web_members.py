"""The member page's 个性化推荐 section (the console's member panels): whether the member
gets personalised recommendations (PIPL Art. 24; the member switches it in chat with
「关闭个性化推荐」/「开启个性化推荐」), and a switch for staff who may edit members, for a
member who asks the shop by phone or in person. Audited; honoured at once on this worker,
on the others within the recommender's member recheck."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from handlers.console.core import admin_of, console_view, form_of, int_id, redirect, services, tenant_of
from handlers.console.registry import add_member_panel
from social_mall.console.permissions import Perm
from social_mall.plugins import Registry
from social_mall_intelligence.recommendations import Recommender, personalised_since, switch_personalised

routes = web.RouteTableDef()
_rec: Recommender | None = None


def register(reg: Registry, recommender: Recommender) -> None:
    global _rec
    _rec = recommender
    reg.add_routes(routes)
    add_member_panel(reg, panel)


async def panel(request: Any, tenant: int, member: int) -> tuple[str, Mapping[str, Any]] | None:
    async with services(request).uows() as uow:
        on, since = await personalised_since(uow, tenant, member)
    return "console/intel/_member_prefs.html", {"member": member, "on": on, "since": since}


@routes.post(r"/console/intelligence/members/{id}/personalised")
@console_view(Perm.MEMBERS_EDIT)
async def switch(request: web.Request) -> web.Response:
    tenant, member = tenant_of(request), int_id(request)
    svc = services(request)
    async with svc.uows() as uow:
        if await switch_personalised(uow, tenant, f"admin:{admin_of(request).username}", member,
                                     form_of(request).get("on") == "1", svc.clock()):
            await uow.commit()
    if _rec is not None:
        _rec.forget_member(tenant, member)
    raise redirect(f"/console/members/{member}", ok="saved")
