"""The dashboard: today's figures and two 14-day charts drawn server-side as SVG."""

from __future__ import annotations

from aiohttp import web
from markupsafe import Markup

from handlers.console.charts import bar_chart
from handlers.console.core import console_view, render, services, tenant_of
from social_mall.console.dashboard import dashboard
from social_mall.console.permissions import Perm

routes = web.RouteTableDef()


@routes.get("/console/")
@console_view(Perm.DASHBOARD)
async def dashboard_page(request: web.Request) -> web.Response:
    svc = services(request)
    async with svc.uows() as uow:
        d = await dashboard(uow, tenant_of(request), svc.clock())
    labels = [p.day.strftime("%m-%d") for p in d.series]
    orders_svg = bar_chart(labels, [p.orders for p in d.series], title="每日订单数")
    gmv_svg = bar_chart(labels, [p.gmv_fen for p in d.series], title="每日成交额 (GMV)", fmt="yuan",
                        colour="#c0562f")
    return render(request, "console/dashboard.html", d=d, orders_svg=Markup(orders_svg),
                  gmv_svg=Markup(gmv_svg),
                  conversion=f"{d.conversion_permille // 10}.{d.conversion_permille % 10}%")


@routes.get("/console")
async def console_root(request: web.Request) -> web.Response:
    raise web.HTTPMovedPermanently("/console/")
