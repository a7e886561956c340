"""The JSON API (/api/v1/): the console's resources for integrations.

Authentication: `Authorization: Bearer smk_…`, a per-admin token (console → API 令牌),
stored only as SHA-256. The token acts with its admin's role and tenant. Errors always
look like {"error": {"code": "...", "message": "...", "field": "..."}}; lists are
{"items": [...], "page": n, "per_page": n, "total": n}. The OpenAPI 3 document is served
at /api/v1/openapi.json.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from handlers.api_v1_openapi import OPENAPI
from handlers.console.core import _key
from handlers.console.registry import extra_permissions
from handlers.context import SERVICES, Services
from social_mall.console import auth, rules
from social_mall.console import catalog as cat
from social_mall.console import orders as adm
from social_mall.console.audit import audit_filter, list_audit
from social_mall.console.errors import ConflictError, InvalidInputError
from social_mall.console.members import member_detail, search_members
from social_mall.console.permissions import Perm, permits, sees_cost
from social_mall.errors import MallError, NotFoundError
from social_mall.parsing import parse_id, is_storable_text
from social_mall.views import OrderView, Page

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_JSON_BYTES = 32 * 1024
API_ADMIN = _key("api_admin", auth.AdminView)


def error(status: int, code: str, message: str, field: str = "", headers: Mapping[str, str] | None = None
          ) -> web.Response:
    body: dict[str, Any] = {"code": code, "message": message}
    if field:
        body["field"] = field
    return web.json_response({"error": body}, status=status, headers=headers)


def ok(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda v: json.dumps(v, ensure_ascii=False, default=str))


def _svc(request: web.Request) -> Services:
    return request.app[SERVICES]


def _admin(request: web.Request) -> auth.AdminView:
    admin = request[API_ADMIN]
    assert isinstance(admin, auth.AdminView)
    return admin


def _tenant(request: web.Request) -> int:
    t = _admin(request).tenant_id
    assert t is not None
    return t


def api_view(perm: str) -> Callable[[Handler], Handler]:
    def wrap(fn: Handler) -> Handler:
        @functools.wraps(fn)
        async def handler(request: web.Request) -> web.StreamResponse:
            svc = _svc(request)
            header = request.headers.get("Authorization", "")
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                return error(401, "unauthorized", "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
            async with svc.uows() as uow:
                admin = await auth.admin_for_token(uow, token.strip(), svc.clock())
                await uow.commit()
            if admin is None:
                return error(401, "unauthorized", "invalid or revoked token", headers={"WWW-Authenticate": "Bearer"})
            if not permits(admin.role, perm, extra_permissions(svc.registry)):
                return error(403, "forbidden", f"role {admin.role} lacks {perm}")
            if admin.tenant_id is None:
                return error(403, "forbidden", "platform tokens have no tenant")
            request[API_ADMIN] = admin
            bad = next((k for k, v in request.query.items() if not (is_storable_text(k) and is_storable_text(v))), None)
            if bad is not None:  # NUL in a filter: PostgreSQL refuses what SQLite takes
                return error(422, "invalid_input", "invalid_text", bad[:40].replace("\x00", ""))
            try:
                return await fn(request)
            except NotFoundError as exc:
                return error(404, "not_found", f"{exc.what} not found")
            except InvalidInputError as exc:
                return error(422, "invalid_input", exc.problem, exc.field)
            except ConflictError as exc:
                return error(409, "conflict", str(exc.what))
            except MallError as exc:
                return error(409, exc.code, exc.code)

        return handler

    return wrap


def _id(request: web.Request, name: str = "id") -> int:
    """An id from the path (social_mall.parsing.parse_id); anything else is a JSON 404."""
    raw = request.match_info[name]
    n = parse_id(raw)
    if n is None:
        raise NotFoundError(name, raw[:20])
    return n


def _paging(request: web.Request) -> tuple[int, int]:
    return rules.page_args(request.query.get("page", "1"), request.query.get("per_page", "20"))


async def _body(request: web.Request) -> dict[str, Any]:
    if request.content_length is not None and request.content_length > MAX_JSON_BYTES:
        raise InvalidInputError("body", "too_long")
    raw = await request.content.read(MAX_JSON_BYTES + 1)
    if len(raw) > MAX_JSON_BYTES:
        raise InvalidInputError("body", "too_long")
    try:
        data = json.loads(raw or b"{}")
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError; RecursionError: [[[[…
        raise InvalidInputError("body", "invalid_json") from None
    if not isinstance(data, dict):
        raise InvalidInputError("body", "object_expected")
    _check_strings(data)
    return data


def _check_strings(data: dict[str, Any]) -> None:
    """Every string, key or value at any depth, is text both backends store: JSON can spell
    a lone surrogate (`"\\ud800"`, which no UTF-8 encoder takes) or NUL (PostgreSQL text
    refuses it). The field named is the value's path, e.g. `skus.0.spec`."""
    stack: list[tuple[str, object]] = [("", data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            if not is_storable_text(value):
                raise InvalidInputError(path or "body", "invalid_text")
        elif isinstance(value, dict):
            for k, v in value.items():
                if not is_storable_text(k):
                    raise InvalidInputError(path or "body", "invalid_text")
                stack.append((f"{path}.{k}" if path else k, v))
        elif isinstance(value, list):
            stack.extend((f"{path}.{i}", v) for i, v in enumerate(value))


def _page(page: Page[Any], fn: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    return {"items": [fn(x) for x in page.items], "page": page.page, "per_page": page.per_page, "total": page.total}


def order_json(o: OrderView) -> dict[str, Any]:
    return {
        "id": o.id, "order_no": o.order_no, "status": o.status, "member_id": o.member_id,
        "goods_fen": o.goods_fen, "shipping_fen": o.shipping_fen, "discount_fen": o.discount_fen,
        "total_fen": o.total_fen, "paid_fen": o.paid_fen, "refunded_fen": o.refunded_fen,
        "ship_name": o.ship_name, "ship_phone": o.ship_phone, "ship_address": o.ship_address,
        "tracking_no": o.tracking_no, "created_at": o.created_at.isoformat(),
        "paid_at": o.paid_at.isoformat() if o.paid_at else None,
        "lines": [{"sku_id": ln.sku_id, "title": ln.title, "spec": ln.spec, "price_fen": ln.price_fen,
                   "qty": ln.qty, "line_fen": ln.line_fen} for ln in o.lines],
    }


def product_json(p: cat.ProductRow, *, costs: bool = False) -> dict[str, Any]:
    """A product as the API gives it; its SKUs' costs only to roles that may read them
    (`costs`: permissions.sees_cost)."""
    return {
        "id": p.id, "title": p.title, "subtitle": p.subtitle, "description": p.description, "image": p.image,
        "category_id": p.category_id, "on_shelf": p.on_shelf, "sort": p.sort, "min_price_fen": p.min_price_fen,
        "max_price_fen": p.max_price_fen, "stock": p.stock,
        "skus": [{"id": s.id, "spec": s.spec, "price_fen": s.price_fen, "stock": s.stock, "on_shelf": s.on_shelf,
                  **({"cost_fen": s.cost_fen} if costs else {})} for s in p.skus],
    }


@routes.get("/api/v1/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return ok(OPENAPI)


@routes.get("/api/v1/me")
@api_view(Perm.TOKENS)
async def me(request: web.Request) -> web.Response:
    a = _admin(request)
    return ok({"id": a.id, "username": a.username, "role": a.role, "tenant_id": a.tenant_id})


@routes.get("/api/v1/categories")
@api_view(Perm.CATALOG_VIEW)
async def categories(request: web.Request) -> web.Response:
    async with _svc(request).uows() as uow:
        rows = await cat.list_categories(uow, _tenant(request))
    return ok({"items": [{"id": c.id, "name": c.name, "sort": c.sort, "products": c.products} for c in rows],
               "page": 1, "per_page": max(1, len(rows)), "total": len(rows)})


@routes.post("/api/v1/categories")
@api_view(Perm.CATALOG_EDIT)
async def create_category(request: web.Request) -> web.Response:
    body = await _body(request)
    async with _svc(request).uows() as uow:
        cid = await cat.create_category(uow, _tenant(request), _admin(request), body.get("name", ""),
                                        body.get("sort", 0))
        await uow.commit()
    return ok({"id": cid}, status=201)


@routes.get("/api/v1/products")
@api_view(Perm.CATALOG_VIEW)
async def products(request: web.Request) -> web.Response:
    page, per_page = _paging(request)
    q = request.query
    cid = q.get("category_id", "")
    shelf = q.get("on_shelf", "")
    if shelf not in ("", "true", "false"):
        raise InvalidInputError("on_shelf", "boolean")
    async with _svc(request).uows() as uow:
        result = await cat.list_products(
            uow, _tenant(request), keyword=rules.text(q.get("q", ""), "q", max_len=40),
            category_id=rules.parse_int(cid, "category_id", lo=1, hi=2**62) if cid else None,
            on_shelf={"true": True, "false": False}.get(shelf), page=page, per_page=per_page)
    costs = sees_cost(_admin(request).role)
    return ok(_page(result, lambda p: product_json(p, costs=costs)))


@routes.post("/api/v1/products")
@api_view(Perm.CATALOG_EDIT)
async def create_product(request: web.Request) -> web.Response:
    body = await _body(request)
    skus_raw = body.get("skus")
    if not isinstance(skus_raw, list) or not skus_raw or not all(isinstance(s, dict) for s in skus_raw):
        raise InvalidInputError("skus", "required")
    data = cat.product_input(body)
    skus = [cat.sku_input({"price_fen": s.get("price_fen"), **s}) for s in skus_raw]
    on_shelf = body.get("on_shelf", True)
    if not isinstance(on_shelf, bool):
        raise InvalidInputError("on_shelf", "boolean")
    async with _svc(request).uows() as uow:
        pid = await cat.create_product(uow, _tenant(request), _admin(request), data, skus, on_shelf=on_shelf)
        await uow.commit()
        product = await cat.get_product(uow, _tenant(request), pid)
    return ok(product_json(product, costs=sees_cost(_admin(request).role)), status=201)


@routes.get("/api/v1/products/{id}")
@api_view(Perm.CATALOG_VIEW)
async def product(request: web.Request) -> web.Response:
    async with _svc(request).uows() as uow:
        return ok(product_json(await cat.get_product(uow, _tenant(request), _id(request)),
                               costs=sees_cost(_admin(request).role)))


@routes.patch("/api/v1/products/{id}")
@api_view(Perm.CATALOG_EDIT)
async def patch_product(request: web.Request) -> web.Response:
    pid = _id(request)
    body = await _body(request)
    tenant, admin = _tenant(request), _admin(request)
    async with _svc(request).uows() as uow:
        current = await cat.get_product(uow, tenant, pid)
        fields = {"title", "subtitle", "description", "category_id", "sort"}
        if fields & body.keys():
            merged = {"title": current.title, "subtitle": current.subtitle, "description": current.description,
                      "category_id": current.category_id, "sort": current.sort,
                      **{k: v for k, v in body.items() if k in fields}}
            await cat.update_product(uow, tenant, admin, pid, cat.product_input(merged))
        if "on_shelf" in body:
            if not isinstance(body["on_shelf"], bool):
                raise InvalidInputError("on_shelf", "boolean")
            await cat.set_product_shelf(uow, tenant, admin, pid, body["on_shelf"])
        await uow.commit()
        return ok(product_json(await cat.get_product(uow, tenant, pid), costs=sees_cost(admin.role)))


@routes.patch("/api/v1/skus/{id}")
@api_view(Perm.CATALOG_EDIT)
async def patch_sku(request: web.Request) -> web.Response:
    sku_id = _id(request)
    body = await _body(request)
    on_shelf = body.get("on_shelf")
    if on_shelf is not None and not isinstance(on_shelf, bool):
        raise InvalidInputError("on_shelf", "boolean")
    spec = body.get("spec")
    if spec is not None and not isinstance(spec, str):
        raise InvalidInputError("spec", "text")
    price = body.get("price_fen")
    delta = rules.parse_int(body.get("stock_delta", 0), "stock_delta", lo=-rules.MAX_STOCK, hi=rules.MAX_STOCK)
    async with _svc(request).uows() as uow:
        row = await cat.update_sku(uow, _tenant(request), _admin(request), sku_id, spec=spec,
                                   price_fen=None if price is None else rules.check_price_fen(price),
                                   stock_delta=delta, on_shelf=on_shelf,
                                   cost_fen=cat.cost_input(body) if "cost_fen" in body else "keep")
        await uow.commit()
    return ok({"id": row.id, "spec": row.spec, "price_fen": row.price_fen, "stock": row.stock,
               "on_shelf": row.on_shelf, "cost_fen": row.cost_fen})


@routes.get("/api/v1/orders")
@api_view(Perm.ORDERS_VIEW)
async def orders(request: web.Request) -> web.Response:
    page, per_page = _paging(request)
    f = adm.order_filter(request.query)
    async with _svc(request).uows() as uow:
        result = await adm.list_orders(uow, _tenant(request), f, page=page, per_page=per_page)
    return ok(_page(result, order_json))


@routes.get("/api/v1/orders/{id}")
@api_view(Perm.ORDERS_VIEW)
async def order(request: web.Request) -> web.Response:
    async with _svc(request).uows() as uow:
        d = await adm.order_detail(uow, _tenant(request), _id(request))
    return ok({**order_json(d.order), "payment_status": d.payment_status, "refundable_fen": d.refundable_fen,
               "refunds": [{"out_refund_no": r.out_refund_no, "amount_fen": r.amount_fen, "reason": r.reason,
                            "status": r.status, "created_at": r.created_at.isoformat()} for r in d.refunds]})


@routes.post("/api/v1/orders/{id}/ship")
@api_view(Perm.ORDERS_SHIP)
async def ship(request: web.Request) -> web.Response:
    oid = _id(request)
    body = await _body(request)
    svc = _svc(request)
    async with svc.uows() as uow:
        view = await adm.ship(uow, _tenant(request), _admin(request), oid, body.get("tracking_no", ""), svc.clock())
        await uow.commit()
    svc.outbox.kick()
    return ok(order_json(view))


@routes.post("/api/v1/orders/{id}/refund")
@api_view(Perm.ORDERS_REFUND)
async def refund(request: web.Request) -> web.Response:
    oid = _id(request)
    body = await _body(request)
    amount = body.get("amount_fen")
    svc = _svc(request)
    async with svc.uows() as uow:
        view = await adm.refund(uow, _tenant(request), _admin(request), oid,
                                amount_fen=None if amount is None else rules.check_price_fen(amount, "amount_fen"),
                                reason=body.get("reason", ""), now=svc.clock())
        await uow.commit()
    svc.outbox.kick()
    return ok({"out_refund_no": view.out_refund_no, "amount_fen": view.amount_fen, "status": view.status,
               "reason": view.reason}, status=202)


@routes.get("/api/v1/members")
@api_view(Perm.MEMBERS_VIEW)
async def members(request: web.Request) -> web.Response:
    page, per_page = _paging(request)
    q = rules.text(request.query.get("q", ""), "q", max_len=64)
    async with _svc(request).uows() as uow:
        result = await search_members(uow, _tenant(request), q, page=page, per_page=per_page)
    return ok(_page(result, lambda m: {"id": m.id, "nickname": m.nickname, "entry_source": m.entry_source,
                                       "orders": m.orders, "paid_fen": m.paid_fen}))


@routes.get("/api/v1/members/{id}")
@api_view(Perm.MEMBERS_VIEW)
async def member(request: web.Request) -> web.Response:
    async with _svc(request).uows() as uow:
        d = await member_detail(uow, _tenant(request), _id(request))
    m = d.member
    return ok({"id": m.id, "nickname": m.nickname, "entry_source": m.entry_source, "orders": m.orders,
               "paid_fen": m.paid_fen,
               "identities": [{"channel": i.channel, "external_id": i.external_id} for i in d.identities],
               "recent_orders": [order_json(o) for o in d.orders.items]})


@routes.get("/api/v1/audit")
@api_view(Perm.AUDIT_VIEW)
async def audit(request: web.Request) -> web.Response:
    page, per_page = _paging(request)
    f = audit_filter(request.query)
    async with _svc(request).uows() as uow:
        result = await list_audit(uow, _tenant(request), f, page=page, per_page=per_page)
    return ok(_page(result, lambda r: {"id": r.id, "at": r.at.isoformat(), "actor": r.actor, "action": r.action,
                                       "subject": r.subject, "before": r.before, "after": r.after}))
