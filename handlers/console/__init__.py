"""The admin web console (`/console/`) as the built-in module "console": server-rendered
pages (templates/console/, static/console.css, no JavaScript), sessions in the KV store,
CSRF on every form, a permission on every route, every query scoped to the admin's
tenant. Other modules add pages through handlers.console.registry.add_console_page.
The JSON API (/api/v1/) registers with it."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from handlers import api_v1
from handlers.console import (
    pages_auth, pages_catalog, pages_channels, pages_dashboard, pages_orders, pages_people, pages_settings, uploads,
)
from social_mall.plugins import Module, Registry

STATIC = Path(__file__).resolve().parent.parent.parent / "static"

static_routes = web.RouteTableDef()


@static_routes.get("/console/static/console.css")
async def console_css(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "console.css", headers={
        "Content-Type": "text/css; charset=utf-8", "Cache-Control": "max-age=3600",
        "X-Content-Type-Options": "nosniff"})


def setup(reg: Registry) -> None:
    for table in (static_routes, pages_auth.routes, pages_dashboard.routes, pages_catalog.routes,
                  pages_orders.routes, pages_people.routes, pages_settings.routes, pages_channels.routes, uploads.routes,
                  api_v1.routes):
        reg.add_routes(table)


MODULE = Module("console", setup, "Admin web console (/console/) and JSON API (/api/v1/)")
