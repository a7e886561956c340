"""Referral (分销) console pages: distributor applications (approve / reject) and the
distributor list, withdrawals (approve with a confirmation step → payout through the
outbox; reject with a reason → funds back), commissions with a streamed CSV export.
Registered by the referral module (handlers/referral.py) through `register(reg)`."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from handlers.console.core import (
    admin_of, console_view, form_of, int_id, page_number, redirect, render, services, stream_csv, tenant_of,
)
from handlers.console.registry import add_console_page
from social_mall.console import referral_admin as adm
from social_mall.console import rules
from social_mall.console.permissions import Perm
from social_mall.plugins import Registry
from social_mall.referral import service as ref

routes = web.RouteTableDef()

DONE = {
    "approved": "已通过", "rejected": "已驳回",
    "wd_approved": "提现已批准，打款已提交到支付网关", "wd_rejected": "提现已驳回，金额已退回可提现余额",
}
STATUS_ZH = {
    "pending": "待审核", "approved": "已通过", "rejected": "已驳回", "disabled": "已停用", "merged": "已合并",
    "requested": "待审核", "paid": "已打款", "failed": "打款失败",
    "frozen": "冻结中", "available": "可提现", "reversed": "已冲回",
}


def register(reg: Registry) -> None:
    reg.add_routes(routes)
    add_console_page(reg, key="referral", title="分销", path="/console/referral/withdrawals",
                     perm=Perm.FINANCE_VIEW, order=60, module="referral")


def _render(request: web.Request, template: str, **ctx: Any) -> web.Response:
    return render(request, template, notice=DONE.get(request.query.get("done", ""), ""), status_zh=STATUS_ZH, **ctx)


# -- distributors --------------------------------------------------------------------------

@routes.get("/console/referral/distributors")
@console_view(Perm.FINANCE_VIEW)
async def distributors(request: web.Request) -> web.Response:
    async with services(request).uows() as uow:
        pending, others = await adm.distributors(uow, tenant_of(request))
    return _render(request, "console/referral_distributors.html", pending=pending, others=others)


@routes.post(r"/console/referral/distributors/{id}/{action:approve|reject}")
@console_view(Perm.FINANCE_APPROVE)
async def decide_distributor(request: web.Request) -> web.Response:
    svc = services(request)
    did = int_id(request)
    action = request.match_info["action"]
    decide = ref.approve_distributor if action == "approve" else ref.reject_distributor
    async with svc.uows() as uow:
        await decide(uow, tenant_of(request), did, actor=admin_of(request).actor, now=svc.clock())
        await uow.commit()
    svc.outbox.kick()   # the applicant hears the decision now
    raise redirect("/console/referral/distributors", done="approved" if action == "approve" else "rejected")


# -- withdrawals ---------------------------------------------------------------------------

@routes.get("/console/referral/withdrawals")
@console_view(Perm.FINANCE_VIEW)
async def withdrawals(request: web.Request) -> web.Response:
    async with services(request).uows() as uow:
        pending, decided = await adm.withdrawals(uow, tenant_of(request))
    return _render(request, "console/referral_withdrawals.html", pending=pending, decided=decided)


@routes.post(r"/console/referral/withdrawals/{id}/approve")
@console_view(Perm.FINANCE_APPROVE)
async def approve_withdrawal(request: web.Request) -> web.Response:
    """First post: a confirmation page (amount, distributor, bill no). Second post (with
    confirm=1): the approval; the payout goes out through the outbox, once."""
    svc = services(request)
    wid = int_id(request)
    tenant = tenant_of(request)
    if form_of(request).get("confirm") != "1":
        async with svc.uows() as uow:
            w = await ref.get_withdrawal(uow, tenant, wid)
        return _render(request, "console/referral_withdrawal_confirm.html", w=w)
    async with svc.uows() as uow:
        await ref.approve_withdrawal(uow, tenant, wid, actor=admin_of(request).actor, now=svc.clock())
        await uow.commit()
    svc.outbox.kick()
    raise redirect("/console/referral/withdrawals", done="wd_approved")


@routes.post(r"/console/referral/withdrawals/{id}/reject")
@console_view(Perm.FINANCE_APPROVE)
async def reject_withdrawal(request: web.Request) -> web.Response:
    svc = services(request)
    wid = int_id(request)
    reason = rules.text(form_of(request).get("reason", ""), "reason", max_len=80, min_len=2)
    async with svc.uows() as uow:
        await ref.reject_withdrawal(uow, tenant_of(request), wid, actor=admin_of(request).actor, now=svc.clock(),
                                    reason=reason)
        await uow.commit()
    svc.outbox.kick()
    raise redirect("/console/referral/withdrawals", done="wd_rejected")


# -- commissions ---------------------------------------------------------------------------

@routes.get("/console/referral/commissions")
@console_view(Perm.FINANCE_VIEW)
async def commissions(request: web.Request) -> web.Response:
    status = adm.commission_status(request.query.get("status", ""))
    async with services(request).uows() as uow:
        page = await adm.commissions(uow, tenant_of(request), status, page=page_number(request))
    return _render(request, "console/referral_commissions.html", page=page, cstatus=status or "",
                   statuses=adm.COMMISSION_STATUSES, query={"status": status} if status else {})


@routes.get("/console/referral/commissions/export.csv")
@console_view(Perm.FINANCE_VIEW)
async def export_commissions(request: web.Request) -> web.StreamResponse:
    status = adm.commission_status(request.query.get("status", ""))
    svc = services(request)
    tenant = tenant_of(request)
    async with svc.uows() as uow:
        uow.audit(tenant, admin_of(request).actor, "referral.commissions.export", "commissions",
                  after={"status": status or ""})
        await uow.commit()
        return await stream_csv(request, f"commissions-{svc.clock():%Y%m%d}.csv",
                                adm.export_rows(uow, tenant, status))
