"""Membership console page (会员积分设置): the tenant's loyalty configuration, including
whether points and coupons come back on a refund; and on the member page, the member's
points and coupons with 「发放优惠券」 (an administrator gives one). Registered by the loyalty
module (handlers/loyalty.py) through `register(reg)`."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from aiohttp import web

from handlers.console.core import (
    admin_of, console_view, error_page, form_of, int_id, problem_text, redirect, render, services, tenant_of,
)
from handlers.console.registry import add_console_page, add_member_panel
from social_mall.errors import NotFoundError
from social_mall.loyalty.errors import CouponSoldOutError
from social_mall.parsing import parse_id
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
    add_member_panel(reg, coupons_panel)


# -- a member's points and coupons on the member page; an administrator gives one ----------------

GIVE_KEY_TTL = 86_400.0   # s: a give form's one-time key is remembered a day (a resubmit gives nothing)


async def coupons_panel(request: Any, tenant: int, member: int) -> tuple[str, Mapping[str, Any]] | None:
    svc = services(request)
    async with svc.uows() as uow:
        coupons = await loyalty.member_coupons(uow, tenant, member)
        templates = await loyalty.issuable(uow, tenant, svc.clock())
        points = await loyalty.points_balance(uow, tenant, member)
    return "console/_member_coupons.html", {"coupons": coupons, "templates": templates, "points": points,
                                            "member": member, "key": secrets.token_hex(12)}


def coupon_form(form: Any) -> tuple[int, str]:
    """(template id, one-time form key) of a 「发放优惠券」 form (a member's, a segment's);
    InvalidInputError in Chinese when either is missing or malformed."""
    template = parse_id(str(form.get("template", "")))
    key = str(form.get("form_key", ""))
    if template is None:
        raise InvalidInputError("优惠券", "required")
    if not (16 <= len(key) <= 48 and key.isascii() and key.isalnum()):
        raise InvalidInputError("表单", "text")
    return template, key


@routes.post(r"/console/members/{id}/coupons")
@console_view(Perm.MEMBERS_EDIT)
async def give_coupon(request: web.Request) -> web.Response:
    """Give the member one coupon of a template (audited: coupon.issue). The form's one-time
    key makes a double click or a resubmit give nothing more."""
    svc = services(request)
    member, tenant = int_id(request), tenant_of(request)
    template, key = coupon_form(form_of(request))
    async with svc.uows() as uow:
        if await uow.members.get(tenant, member) is None:
            raise NotFoundError("member", member)
    if not await svc.kv.set_nx(f"console:give_coupon:{tenant}:{key}", str(member), GIVE_KEY_TTL):
        raise redirect(f"/console/members/{member}", ok="saved")       # this form gave already
    try:
        async with svc.uows() as uow:
            await loyalty.issue_coupon(uow, tenant, member, template, actor=admin_of(request).actor,
                                       now=svc.clock())
            await uow.commit()
    except CouponSoldOutError as exc:
        await svc.kv.delete(f"console:give_coupon:{tenant}:{key}")
        return error_page(request, 409, "券已发完", f"「{exc.name}」的总量已经发完，请换一种券或在券模板里加量。")
    except BaseException:
        await svc.kv.delete(f"console:give_coupon:{tenant}:{key}")   # nothing was given: the form may be sent again
        raise
    svc.outbox.kick()   # the member is told of it (loyalty.coupon_issued)
    raise redirect(f"/console/members/{member}", ok="saved")


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
