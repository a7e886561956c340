"""The module's console pages (/console/local/…), through the console's extension point:
every handler is guarded by `console_view` (session, CSRF on every POST, the permission,
the admin's tenant), reads and writes through the module's services, and answers a bad
form with the form again and a Chinese problem text (400), never a 500."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from handlers.console.core import (
    admin_of, console_view, error_page, form_of, int_id, page_number, redirect, render, services, tenant_of,
)
from handlers.console.registry import add_console_page, add_console_permission
from social_mall.console.errors import InvalidInputError
from social_mall.errors import NotFoundError
from social_mall.plugins import Registry
from social_mall_local import bookings as B
from social_mall_local import delivery as D
from social_mall_local import products as P
from social_mall_local import shipping
from social_mall_local import staff as S
from social_mall_local import stores
from social_mall_local import tickets as T
from social_mall_local import verify as V
from social_mall_local.codes import parse_ticket_code
from social_mall_local.console_views import console_tickets, console_verifications
from social_mall_local.forms import (
    checkbox, exceptions_field, hours_fields, int_field, minute_field, money_field, phone_field, pictures_field,
    point_field, problem_zh, text_field,
)
from social_mall_local.geo import SHANGHAI, Point, clock as clock_text, e6_text, parse_point, ranges_text
from social_mall_local.rules_delivery import parse_tiers
from social_mall_local.rules_shipping import PROVINCES, parse_rule_line

routes = web.RouteTableDef()

VIEW, EDIT = "local.view", "local.edit"
VERIFY, REVERSE = "local.verify", "local.reverse"   # verify in the console; reverse a verification
SHIP = "orders.ship"                                 # the rider hand-off: the core's shipping permission
WEEKDAYS = ((1, "周一"), (2, "周二"), (3, "周三"), (4, "周四"), (5, "周五"), (6, "周六"), (7, "周日"))


def register(reg: Registry) -> None:
    reg.add_routes(routes)
    add_console_page(reg, key="local", title="本地服务", path="/console/local/stores", perm=VIEW, order=45,
                     module="local_services")
    add_console_permission(reg, VIEW, ("admin", "operator", "service", "finance"))
    add_console_permission(reg, EDIT, ("admin", "operator"))
    add_console_permission(reg, VERIFY, ("admin", "operator", "service"))
    add_console_permission(reg, REVERSE, ("admin",))


def actor(request: web.Request) -> str:
    return f"admin:{admin_of(request).username}"


# -- stores ---------------------------------------------------------------------------------------

def _today_hours(s: stores.StoreView) -> str:
    from datetime import datetime

    return ranges_text(s.hours.on(datetime.now(SHANGHAI).date()))


@routes.get("/console/local/stores")
@console_view(VIEW)
async def store_list(request: web.Request) -> web.Response:
    async with services(request).uows() as uow:
        page = await stores.list_stores(uow, tenant_of(request), page=page_number(request))
    return render(request, "console/local/stores.html", page=page, today_hours=_today_hours)


def _store_values(s: stores.StoreView | None) -> dict[str, Any]:
    if s is None:
        return {"name": "", "address": "", "phone": "", "lat": "", "lng": "", "exceptions": "", "pictures": "",
                "active": True, **{f"hours_{d}": "10:00-22:00" for d, _ in WEEKDAYS}}
    week = {f"hours_{d}": ranges_text(s.hours.week.get(d, ())) for d, _ in WEEKDAYS}
    exc = "\n".join(f"{day.isoformat()} {ranges_text(r) or '休息'}" for day, r in sorted(s.hours.exceptions.items()))
    return {"name": s.name, "address": s.address, "phone": s.phone, "lat": e6_text(s.point.lat_e6),
            "lng": e6_text(s.point.lng_e6), "exceptions": exc, "pictures": "\n".join(s.pictures),
            "active": s.active, **week}


def parse_store(form: Mapping[str, object]) -> stores.StoreInput:
    return stores.StoreInput(
        name=text_field(form, "name", 40), address=text_field(form, "address", 200), phone=phone_field(form),
        point=point_field(form), hours=hours_fields(form), exceptions=exceptions_field(form),
        pictures=pictures_field(form), active=checkbox(form, "active"))


def _store_form(request: web.Request, store_id: int | None, values: Mapping[str, Any], error: str = "",
                status: int = 200) -> web.Response:
    return render(request, "console/local/store_form.html", status=status, store_id=store_id, v=values,
                  error=error, weekdays=WEEKDAYS)


def _posted(form: Mapping[str, object]) -> dict[str, Any]:
    values: dict[str, Any] = {k: str(v) for k, v in form.items() if k != "_csrf"}
    values["active"] = checkbox(form, "active")
    for d, _ in WEEKDAYS:
        values.setdefault(f"hours_{d}", "")
    for k in ("name", "address", "phone", "lat", "lng", "exceptions", "pictures"):
        values.setdefault(k, "")
    return values


@routes.get("/console/local/stores/new")
@console_view(EDIT)
async def store_new(request: web.Request) -> web.Response:
    return _store_form(request, None, _store_values(None))


@routes.get(r"/console/local/stores/{id}")
@console_view(VIEW)
async def store_page(request: web.Request) -> web.Response:
    async with services(request).uows() as uow:
        store = await stores.get_store(uow, tenant_of(request), int_id(request))
    return _store_form(request, store.id, _store_values(store))


async def _save(request: web.Request, store_id: int | None) -> web.Response:
    form = form_of(request)
    try:
        data = parse_store(form)
    except InvalidInputError as exc:
        return _store_form(request, store_id, _posted(form), problem_zh(exc), 400)
    async with services(request).uows() as uow:
        saved = await stores.save_store(uow, tenant_of(request), actor(request), data, store_id)
        await uow.commit()
    raise redirect(f"/console/local/stores/{saved.id}", ok="saved")


@routes.post("/console/local/stores")
@console_view(EDIT)
async def store_create(request: web.Request) -> web.Response:
    return await _save(request, None)


@routes.post(r"/console/local/stores/{id}")
@console_view(EDIT)
async def store_update(request: web.Request) -> web.Response:
    return await _save(request, int_id(request))


# -- products: fulfilment settings ----------------------------------------------------------------

@routes.get("/console/local/products")
@console_view(VIEW)
async def product_list(request: web.Request) -> web.Response:
    async with services(request).uows() as uow:
        page = await P.product_page(uow, tenant_of(request), page=page_number(request))
    return render(request, "console/local/products.html", page=page, kind_zh=P.KIND_ZH, method_zh=P.METHOD_ZH)


def parse_product(form: Mapping[str, object], product_id: int) -> P.ProductSettings:
    kind = str(form.get("kind", ""))
    if kind not in P.KINDS:
        raise InvalidInputError("kind", "range")
    methods = tuple(m for m in P.METHODS if checkbox(form, f"m_{m}"))
    if kind == P.GOODS and not methods:
        raise InvalidInputError("methods", "required")
    template = int_field(form, "ship_template_id", 0, 10**15, default=0)
    return P.ProductSettings(
        product_id, kind, methods or (P.EXPRESS,), uses=int_field(form, "uses", 1, 1000, default=1),
        valid_days=int_field(form, "valid_days", 1, 3650, default=30), refund_unused=checkbox(form, "refund_unused"),
        ship_template_id=template or None, weight_g=int_field(form, "weight_g", 0, 10**7, default=0))


@routes.post(r"/console/local/products/{id}")
@console_view(EDIT)
async def product_save(request: web.Request) -> web.Response:
    product_id = int_id(request)
    try:
        data = parse_product(form_of(request), product_id)
    except InvalidInputError as exc:
        return error_page(request, 400, "输入有误", problem_zh(exc))
    async with services(request).uows() as uow:
        await P.save_settings(uow, tenant_of(request), actor(request), data)
        await uow.commit()
    raise redirect("/console/local/products", ok="saved")


# -- tickets and verification ---------------------------------------------------------------------

@routes.get("/console/local/tickets")
@console_view(VIEW)
async def ticket_list(request: web.Request) -> web.Response:
    code = parse_ticket_code(request.query.get("code", "")) or ""
    status = request.query.get("status", "")
    status = status if status in T.STATUS_ZH else ""
    async with services(request).uows() as uow:
        page = await console_tickets(uow, tenant_of(request), code=code, status=status, page=page_number(request))
    return render(request, "console/local/tickets.html", page=page, code=request.query.get("code", "")[:20],
                  status_filter=status, status_zh=T.STATUS_ZH, kind_zh=T.KIND_ZH, now=services(request).clock())


@routes.get(r"/console/local/tickets/{id}")
@console_view(VIEW)
async def ticket_page(request: web.Request) -> web.Response:
    svc = services(request)
    async with svc.uows() as uow:
        ticket = await T.get_ticket(uow, tenant_of(request), int_id(request))
        if ticket is None:
            raise NotFoundError("ticket", request.match_info["id"])
        log_rows = await V.ticket_log(uow, tenant_of(request), ticket.id)
    return render(request, "console/local/ticket.html", t=ticket, log=log_rows, status_zh=T.STATUS_ZH,
                  kind_zh=T.KIND_ZH, now=svc.clock(), notice=request.query.get("notice", "")[:80])


@routes.post(r"/console/local/tickets/{id}/verify")
@console_view(VERIFY)
async def ticket_verify(request: web.Request) -> web.Response:
    svc = services(request)
    ticket_id = int_id(request)
    async with svc.uows() as uow:
        done = await V.verify(uow, tenant_of(request), ticket_id, svc.clock(), staff=None, actor=actor(request))
        if isinstance(done, V.Refusal):
            return error_page(request, 409, "无法核销", REFUSAL_ZH.get(done.reason, done.reason))
        uow.audit(tenant_of(request), actor(request), "local.ticket.verify", f"ticket:{ticket_id}",
                  after={"uses": done.uses, "uses_left": done.uses_left})
        await uow.commit()
    raise redirect(f"/console/local/tickets/{ticket_id}", notice="核销成功")


@routes.get("/console/local/verifications")
@console_view(VIEW)
async def verification_list(request: web.Request) -> web.Response:
    svc = services(request)
    async with svc.uows() as uow:
        page = await console_verifications(uow, tenant_of(request), page=page_number(request))
    return render(request, "console/local/verifications.html", page=page, now=svc.clock(),
                  window=V.REVERSE_WINDOW, notice=request.query.get("notice", "")[:80])


@routes.post(r"/console/local/verifications/{id}/reverse")
@console_view(REVERSE)
async def verification_reverse(request: web.Request) -> web.Response:
    svc = services(request)
    try:
        async with svc.uows() as uow:
            await V.reverse(uow, tenant_of(request), int_id(request), actor(request), svc.clock())
            await uow.commit()
    except V.ReverseRefusedError as exc:
        return error_page(request, 409, "无法撤销", REVERSE_ZH.get(exc.reason, exc.reason))
    raise redirect("/console/local/verifications", notice="已撤销，次数已退回")


# -- staff ------------------------------------------------------------------------------------------

@routes.get("/console/local/staff")
@console_view(VIEW)
async def staff_page(request: web.Request) -> web.Response:
    async with services(request).uows() as uow:
        rows = await S.staff_list(uow, tenant_of(request))
        all_ = await stores.all_stores(uow, tenant_of(request))
    return render(request, "console/local/staff.html", rows=rows, stores=all_, new_code=None)


@routes.post("/console/local/staff/codes")
@console_view(EDIT)
async def staff_code(request: web.Request) -> web.Response:
    svc = services(request)
    form = form_of(request)
    try:
        store_id = int_field(form, "store_id", 1, 10**15)
    except InvalidInputError as exc:
        return error_page(request, 400, "输入有误", problem_zh(exc))
    async with svc.uows() as uow:
        made = await S.create_bind_code(uow, tenant_of(request), store_id, actor(request), svc.clock())
        await uow.commit()
        rows = await S.staff_list(uow, tenant_of(request))
        all_ = await stores.all_stores(uow, tenant_of(request))
    return render(request, "console/local/staff.html", rows=rows, stores=all_, new_code=made)


@routes.post(r"/console/local/staff/{id}/active")
@console_view(EDIT)
async def staff_active(request: web.Request) -> web.Response:
    async with services(request).uows() as uow:
        await S.set_active(uow, tenant_of(request), int_id(request), checkbox(form_of(request), "active"),
                           actor(request))
        await uow.commit()
    raise redirect("/console/local/staff", ok="saved")


REFUSAL_ZH = {"unknown": "没有这张券码", "wrong_store": "不是本店的券码", "expired": "券码已过期", "used": "券码已用完",
              "refunded": "订单已退款", "not_staff": "不是核销员", "too_many": "尝试次数太多", "bad_code": "券码格式不对"}
REVERSE_ZH = {"unknown": "没有这条核销记录", "reversed": "这次核销已经撤销过了",
              "too_late": f"超过 {int(V.REVERSE_WINDOW.total_seconds() // 3600)} 小时，不能撤销",
              "ticket_closed": "券码已过期或已退款，不能撤销"}


# -- shipping templates -------------------------------------------------------------------------------

def parse_template(form: Mapping[str, object]) -> shipping.TemplateInput:
    mode = str(form.get("mode", ""))
    if mode not in ("piece", "weight"):
        raise InvalidInputError("mode", "range")
    unserved_raw = text_field(form, "unserved", 300, required=False).replace("，", ",")
    unserved = tuple(r.strip() for r in unserved_raw.split(",") if r.strip())
    if any(r not in PROVINCES for r in unserved):
        raise InvalidInputError("unserved", "regions_format")
    rules = []
    for line in text_field(form, "rules", 3000, multiline=True).splitlines():
        if not line.strip():
            continue
        rule = parse_rule_line(line.strip())
        if rule is None:
            raise InvalidInputError("rules", "rules_format")
        rules.append(rule)
    if not rules:
        raise InvalidInputError("rules", "required")
    return shipping.TemplateInput(text_field(form, "name", 40), mode, money_field(form, "free_over", default=0),
                                  unserved, tuple(rules), checkbox(form, "is_default"))


@routes.get("/console/local/shipping")
@console_view(VIEW)
async def shipping_page(request: web.Request) -> web.Response:
    async with services(request).uows() as uow:
        found = await shipping.all_templates(uow, tenant_of(request))
    return render(request, "console/local/shipping.html", templates=found, error="", v={})


@routes.post("/console/local/shipping")
@console_view(EDIT)
async def shipping_save(request: web.Request) -> web.Response:
    svc = services(request)
    form = form_of(request)
    try:
        data = parse_template(form)
    except InvalidInputError as exc:
        async with svc.uows() as uow:
            found = await shipping.all_templates(uow, tenant_of(request))
        return render(request, "console/local/shipping.html", status=400, templates=found, error=problem_zh(exc),
                      v={k: str(v) for k, v in form.items() if k != "_csrf"})
    async with svc.uows() as uow:
        await shipping.save_template(uow, tenant_of(request), actor(request), data, None, svc.clock())
        await uow.commit()
    raise redirect("/console/local/shipping", ok="saved")


# -- delivery zones -----------------------------------------------------------------------------------

def parse_zone(form: Mapping[str, object]) -> D.ZoneInput:
    kind = str(form.get("kind", ""))
    if kind not in ("radius", "polygon"):
        raise InvalidInputError("kind", "range")
    polygon: tuple[Point, ...] = ()
    radius = 0
    if kind == "radius":
        radius = int_field(form, "radius_m", 100, 100_000)
    else:
        pts = []
        for line in text_field(form, "polygon", 4000, multiline=True).splitlines():
            if not line.strip():
                continue
            parts = line.replace(",", " ").split()
            p = parse_point(parts[0], parts[1]) if len(parts) == 2 else None
            if p is None:
                raise InvalidInputError("polygon", "polygon_format")
            pts.append(p)
        if not 3 <= len(pts) <= 200:
            raise InvalidInputError("polygon", "polygon_format")
        polygon = tuple(pts)
    tiers = parse_tiers(text_field(form, "tiers", 1000, multiline=True))
    if tiers is None:
        raise InvalidInputError("tiers", "tiers_format")
    return D.ZoneInput(int_field(form, "store_id", 1, 10**15), text_field(form, "name", 40), kind, radius, polygon,
                       tiers, money_field(form, "min_order", default=0), checkbox(form, "active"))


@routes.get("/console/local/zones")
@console_view(VIEW)
async def zone_page(request: web.Request) -> web.Response:
    async with services(request).uows() as uow:
        found = await D.zones(uow, tenant_of(request))
        all_ = await stores.all_stores(uow, tenant_of(request))
    return render(request, "console/local/zones.html", zones=found, stores={s.id: s for s in all_}, error="", v={})


@routes.post("/console/local/zones")
@console_view(EDIT)
async def zone_save(request: web.Request) -> web.Response:
    svc = services(request)
    form = form_of(request)
    try:
        data = parse_zone(form)
        async with svc.uows() as uow:
            await D.save_zone(uow, tenant_of(request), actor(request), data, svc.clock())
            await uow.commit()
    except (InvalidInputError, NotFoundError) as exc:
        msg = problem_zh(exc) if isinstance(exc, InvalidInputError) else problem_zh(InvalidInputError("store_id", "unknown_store"))
        async with svc.uows() as uow:
            found = await D.zones(uow, tenant_of(request))
            all_ = await stores.all_stores(uow, tenant_of(request))
        return render(request, "console/local/zones.html", status=400, zones=found, stores={s.id: s for s in all_},
                      error=msg, v={k: str(v) for k, v in form.items() if k != "_csrf"})
    raise redirect("/console/local/zones", ok="saved")


@routes.post(r"/console/local/zones/{id}/active")
@console_view(EDIT)
async def zone_active(request: web.Request) -> web.Response:
    async with services(request).uows() as uow:
        await D.set_zone_active(uow, tenant_of(request), int_id(request), checkbox(form_of(request), "active"),
                                actor(request))
        await uow.commit()
    raise redirect("/console/local/zones", ok="saved")


# -- delivery slots: templates and the week calendar -----------------------------------------------

def parse_slots(form: Mapping[str, object]) -> D.SlotInput:
    days = tuple(d for d, _ in WEEKDAYS if checkbox(form, f"day_{d}"))
    if not days:
        raise InvalidInputError("weekdays", "required")
    start, end = minute_field(form, "start"), minute_field(form, "end")
    if end <= start:
        raise InvalidInputError("end", "range")
    return D.SlotInput(int_field(form, "store_id", 1, 10**15), days, start, end,
                       int_field(form, "capacity", 1, 10_000))


async def _slots_page(request: web.Request, status: int = 200, error: str = "", v: Mapping[str, str] = {}
                      ) -> web.Response:
    svc = services(request)
    tenant = tenant_of(request)
    async with svc.uows() as uow:
        all_ = await stores.all_stores(uow, tenant)
        raw = request.query.get("store_id", "")
        chosen = next((s for s in all_ if str(s.id) == raw), all_[0] if all_ else None)
        cal = await D.week(uow, tenant, chosen, svc.clock()) if chosen is not None else None
        rows = [r for r in await D.slot_template_rows(uow, tenant) if chosen is None or r.store_id == chosen.id]
    return render(request, "console/local/slots.html", status=status, stores=all_, store=chosen, week=cal,
                  templates=rows, weekdays=WEEKDAYS, clock=clock_text, error=error, v=v)


@routes.get("/console/local/slots")
@console_view(VIEW)
async def slots_page(request: web.Request) -> web.Response:
    return await _slots_page(request)


@routes.post("/console/local/slots")
@console_view(EDIT)
async def slots_add(request: web.Request) -> web.Response:
    svc = services(request)
    form = form_of(request)
    try:
        data = parse_slots(form)
        async with svc.uows() as uow:
            await D.add_slot_templates(uow, tenant_of(request), actor(request), data)
            await uow.commit()
    except InvalidInputError as exc:
        return await _slots_page(request, 400, problem_zh(exc), {k: str(v) for k, v in form.items() if k != "_csrf"})
    except NotFoundError:
        return await _slots_page(request, 400, problem_zh(InvalidInputError("store_id", "unknown_store")))
    raise redirect(f"/console/local/slots?store_id={data.store_id}", ok="saved")


@routes.post(r"/console/local/slots/{id}/active")
@console_view(EDIT)
async def slot_active(request: web.Request) -> web.Response:
    async with services(request).uows() as uow:
        await D.set_slot_active(uow, tenant_of(request), int_id(request), checkbox(form_of(request), "active"),
                                actor(request))
        await uow.commit()
    raise redirect("/console/local/slots", ok="saved")


# -- same-city deliveries: rider hand-off ------------------------------------------------------------

@routes.get("/console/local/deliveries")
@console_view(VIEW)
async def delivery_list(request: web.Request) -> web.Response:
    async with services(request).uows() as uow:
        rows = await D.deliveries(uow, tenant_of(request), (D.PLACED, D.DISPATCHED, D.DELIVERED))
    return render(request, "console/local/deliveries.html", rows=rows, status_zh=D.STATUS_ZH,
                  notice=request.query.get("notice", "")[:80])


@routes.post(r"/console/local/deliveries/{id}/dispatch")
@console_view(SHIP)
async def delivery_dispatch(request: web.Request) -> web.Response:
    svc = services(request)
    order_id = int_id(request)          # an odd id is a 404 before the form is read
    try:
        rider = text_field(form_of(request), "rider", 40)
    except InvalidInputError as exc:
        return error_page(request, 400, "输入有误", problem_zh(exc))
    async with svc.uows() as uow:
        await D.dispatch(uow, tenant_of(request), order_id, rider, actor(request), svc.clock())
        await uow.commit()
    raise redirect("/console/local/deliveries", notice="已派单，顾客会收到通知")


@routes.post(r"/console/local/deliveries/{id}/delivered")
@console_view(SHIP)
async def delivery_done(request: web.Request) -> web.Response:
    svc = services(request)
    async with svc.uows() as uow:
        await D.delivered(uow, tenant_of(request), int_id(request), actor(request), svc.clock())
        await uow.commit()
    raise redirect("/console/local/deliveries", notice="已送达，订单已完成")


# -- appointments: resources, service terms, bookings ---------------------------------------------------

@routes.get("/console/local/resources")
@console_view(VIEW)
async def resource_page(request: web.Request) -> web.Response:
    tenant = tenant_of(request)
    async with services(request).uows() as uow:
        rows = await B.resource_rows(uow, tenant)
        specs = await B.spec_rows(uow, tenant)
        all_ = await stores.all_stores(uow, tenant)
        template = await B.reminder_template(uow, tenant)
    return render(request, "console/local/resources.html", rows=rows, specs=specs, stores={s.id: s for s in all_},
                  titles={pid: title for pid, title, _ in specs}, reminder_template=template,
                  error=request.query.get("error", "")[:120])


def parse_spec(form: Mapping[str, object]) -> B.SpecInput:
    duration = int_field(form, "duration_min", 15, 24 * 60)
    step = int_field(form, "step_min", 15, 24 * 60, default=30)
    if duration % 15 or step % 15:
        raise InvalidInputError("duration_min", "range")
    return B.SpecInput(int_field(form, "product_id", 1, 10**15), duration, step, money_field(form, "deposit", default=0),
                       int_field(form, "cancel_free_hours", 0, 24 * 30, default=24),
                       int_field(form, "late_refund_pct", 0, 100, default=0) * 100,
                       int_field(form, "remind_hours", 0, 24 * 7, default=2))


@routes.post("/console/local/services")
@console_view(EDIT)
async def spec_save(request: web.Request) -> web.Response:
    try:
        data = parse_spec(form_of(request))
    except InvalidInputError as exc:
        return error_page(request, 400, "输入有误", problem_zh(exc))
    async with services(request).uows() as uow:
        await B.save_spec(uow, tenant_of(request), actor(request), data)
        await uow.commit()
    raise redirect("/console/local/resources", ok="saved")


@routes.post("/console/local/resources")
@console_view(EDIT)
async def resource_add(request: web.Request) -> web.Response:
    form = form_of(request)
    try:
        kind = str(form.get("kind", ""))
        if kind not in ("staff", "room"):
            raise InvalidInputError("kind", "range")
        products = [int(k[2:]) for k in form if k.startswith("p_") and k[2:].isdigit() and len(k) < 20
                    and checkbox(form, k)]
        if not products:
            raise InvalidInputError("services", "required")
        async with services(request).uows() as uow:
            await B.add_resource(uow, tenant_of(request), actor(request), int_field(form, "store_id", 1, 10**15),
                                 text_field(form, "name", 40), kind, products)
            await uow.commit()
    except InvalidInputError as exc:
        return error_page(request, 400, "输入有误", problem_zh(exc))
    raise redirect("/console/local/resources", ok="saved")


@routes.post(r"/console/local/resources/{id}/active")
@console_view(EDIT)
async def resource_active(request: web.Request) -> web.Response:
    async with services(request).uows() as uow:
        await B.set_resource_active(uow, tenant_of(request), int_id(request), checkbox(form_of(request), "active"),
                                    actor(request))
        await uow.commit()
    raise redirect("/console/local/resources", ok="saved")


@routes.post("/console/local/settings")
@console_view(EDIT)
async def settings_save(request: web.Request) -> web.Response:
    try:
        template = text_field(form_of(request), "reminder_template_id", 64, required=False)
        if template and not all(c.isascii() and (c.isalnum() or c in "-_") for c in template):
            raise InvalidInputError("reminder_template_id", "control_chars")
    except InvalidInputError as exc:
        return error_page(request, 400, "输入有误", problem_zh(exc))
    async with services(request).uows() as uow:
        await B.save_reminder_template(uow, tenant_of(request), actor(request), template)
        await uow.commit()
    raise redirect("/console/local/resources", ok="saved")


@routes.get("/console/local/bookings")
@console_view(VIEW)
async def booking_list(request: web.Request) -> web.Response:
    svc = services(request)
    async with svc.uows() as uow:
        rows = await B.upcoming(uow, tenant_of(request), svc.clock())
    return render(request, "console/local/bookings.html", rows=rows, status_zh=B.STATUS_ZH)
