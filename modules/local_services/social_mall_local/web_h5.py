"""H5 pages of the module: a ticket with its QR code (what the staff member scans).

The link is signed (HMAC of the shop's SECRET_KEY over tenant, ticket and its member),
so only the member it was sent to can open it; the page is never cached and sends no
referrer (its URL is the credential)."""

from __future__ import annotations

import hashlib
import hmac

import segno
from aiohttp import web

from handlers.context import SERVICES, Services
from social_mall_local.tickets import KIND_ZH, STATUS_ZH, get_ticket

routes = web.RouteTableDef()
HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff",
           "X-Frame-Options": "DENY"}


def ticket_token(svc: Services, tenant_code: str, ticket_id: int, member_id: int) -> str:
    key = svc.settings.secret_key.get_secret_value().encode()
    return hmac.new(key, f"local-ticket:{tenant_code}:{ticket_id}:{member_id}".encode(), hashlib.sha256).hexdigest()[:24]


def ticket_url(svc: Services, tenant_code: str, ticket_id: int, member_id: int) -> str:
    return f"{svc.public_base_url}/local/ticket/{tenant_code}/{ticket_id}?s={ticket_token(svc, tenant_code, ticket_id, member_id)}"


def qr_data_uri(text: str) -> str:
    return str(segno.make(text, error="m").png_data_uri(scale=6, border=2))


@routes.get(r"/local/ticket/{tenant}/{ticket}")
async def ticket_page(request: web.Request) -> web.Response:
    svc = request.app[SERVICES]
    tenant = await svc.tenant(request.match_info["tenant"])
    raw = request.match_info["ticket"]
    if tenant is None or not (raw.isascii() and raw.isdigit() and len(raw) <= 18):
        raise web.HTTPNotFound(text="券码不存在", headers=HEADERS)
    async with svc.uows() as uow:
        ticket = await get_ticket(uow, tenant.id, int(raw))
    sig = request.query.get("s", "")
    if ticket is None or not hmac.compare_digest(
            sig.encode("utf-8", "surrogatepass"), ticket_token(svc, tenant.code, ticket.id, ticket.member_id).encode()):
        raise web.HTTPNotFound(text="券码不存在或链接无效", headers=HEADERS)
    html = svc.templates.get_template("h5/local/ticket.html").render(
        tenant=tenant, t=ticket, qr=qr_data_uri(ticket.code), kind=KIND_ZH.get(ticket.kind, "券码"),
        status=STATUS_ZH.get(ticket.status, ticket.status))
    return web.Response(text=html, content_type="text/html", charset="utf-8", headers=HEADERS)
