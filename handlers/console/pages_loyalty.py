"""Membership console page (会员积分设置): the tenant's loyalty configuration, including
whether points and coupons come back on a refund. Registered by the loyalty module
(handlers/loyalty.py) through `register(reg)`."""

from __future__ import annotations

from dataclasses import asdict

from aiohttp import web

from handlers.console.core import admin_of, console_view, form_of, problem_text, redirect, render, services, tenant_of
from handlers.console.registry import add_console_page
from social_mall.console.errors import InvalidInputError
from social_mall.console.loyalty_admin import FIELDS_ZH, update_config
from social_mall.console.permissions import Perm
from social_mall.loyalty import rules
from social_mall.loyalty import service as loyalty
from social_mall.plugins import Registry

routes = web.RouteTableDef()


def register(reg: Registry) -> None:
    reg.add_routes(routes)
    add_console_page(reg, key="loyalty", title="会员积分", path="/console/loyalty", perm=Perm.SETTINGS,
                     order=84, module="loyalty")


async def _page(request: web.Request, *, status: int = 200, error: str = "") -> web.Response:
    async with services(request).uows() as uow:
        cfg = await loyalty.config(uow, tenant_of(request))
    return render(request, "console/loyalty.html", status=status, cfg=asdict(cfg), labels=FIELDS_ZH,
                  numbers=list(rules.CONFIG_BOUNDS.items()), points_rules=rules.REFUND_POINTS_RULES,
                  coupon_rules=rules.REFUND_COUPON_RULES, error=error)


@routes.get("/console/loyalty")
@console_view(Perm.SETTINGS)
async def loyalty_page(request: web.Request) -> web.Response:
    return await _page(request)


@routes.post("/console/loyalty")
@console_view(Perm.SETTINGS)
async def save_loyalty(request: web.Request) -> web.Response:
    form = {k: str(v) for k, v in form_of(request).items() if k != "_csrf"}
    try:
        async with services(request).uows() as uow:
            await update_config(uow, tenant_of(request), admin_of(request), form)
            await uow.commit()
    except InvalidInputError as exc:
        return await _page(request, status=400,
                           error=problem_text(InvalidInputError(FIELDS_ZH.get(exc.field, exc.field), exc.problem)))
    raise redirect("/console/loyalty", ok="saved")
