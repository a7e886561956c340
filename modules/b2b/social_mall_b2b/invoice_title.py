"""WeChat's `submit_invoice_title` event (the member picked a saved invoice title — 发票抬头 —
in WeChat's own list) fills the invoice details of the member's business account, through
the core's account-event seam (`registry.add_account_event`: the fields as WeChat sent
them, once per event). Fields read: FromUserName (the member's openid), title, tax_no, addr,
phone, bank_type, bank_no (title_type / attach ignored). A member without an account of its
own, or a personal title without a tax number, changes nothing. Audited; the member is told."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from handlers.context import Services
from handlers.push import push_to_member
from social_mall.members.service import member_of
from social_mall_b2b.accounts import LIMITS, clean_text
from social_mall_b2b.models import Company

EVENT = "submit_invoice_title"


def _field(fields: Mapping[str, Any], name: str, key: str) -> str:
    raw = fields.get(name)
    value = clean_text(raw if isinstance(raw, str) else "")
    return value[:LIMITS[key][1]]


def details(fields: Mapping[str, Any]) -> dict[str, str]:
    """The event's fields as the company's invoice details."""
    return {
        "invoice_title": _field(fields, "title", "invoice_title"),
        "invoice_tax_no": _field(fields, "tax_no", "invoice_tax_no").upper(),
        "invoice_bank": " ".join(x for x in (_field(fields, "bank_type", "invoice_bank"),
                                             _field(fields, "bank_no", "invoice_bank")) if x)[:100],
        "invoice_address": " ".join(x for x in (_field(fields, "addr", "invoice_address"),
                                                _field(fields, "phone", "invoice_address")) if x)[:200],
    }


def handler(svc: Services):  # type: ignore[no-untyped-def]
    async def take(tenant: int, fields: Mapping[str, Any]) -> None:
        openid = fields.get("FromUserName")
        got = details(fields)
        if not isinstance(openid, str) or not got["invoice_title"] or not got["invoice_tax_no"]:
            return
        async with svc.uows() as uow:
            member = await member_of(uow, tenant, "mp", openid)
            if member is None:
                return
            company = (await uow.session.execute(select(Company).where(
                Company.tenant_id == tenant, Company.owner_member_id == member))).scalar_one_or_none()
            if company is None:
                return
            before: dict[str, object] = {k: getattr(company, k) for k in got}
            for k, v in got.items():
                setattr(company, k, v)
            await uow.session.flush()
            uow.audit(tenant, f"member:{member}", "b2b.invoice_title", f"company:{company.id}",
                      before=before, after=dict(got))
            await uow.commit()
        await push_to_member(svc, tenant, member, "chat/b2b/push/invoice_title.txt", got)

    return take
