"""Business accounts: a member applies (company name, 统一社会信用代码, contact, invoice
details), an admin approves or rejects with a reason (one conditional update, audited,
pushed to the applicant through the outbox). A rejected applicant may apply again."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime

from social_mall.members.rules import PHONE, mask_phone
from social_mall.views import Page
from social_mall_b2b.errors import (
    AlreadyAppliedError, InvalidApplicationError, InvalidUsccError, NotPendingError, UsccTakenError,
)
from social_mall_b2b.events import CompanyDecided
from social_mall_b2b.kept import kept
from social_mall_b2b.models import Company
from social_mall_b2b.repos import B2bRepo
from social_mall_b2b.rules import check_uscc
from storage.uow import UnitOfWork

PENDING, APPROVED, REJECTED = "pending", "approved", "rejected"
LIMITS = {"name": (2, 60), "contact_name": (1, 20), "invoice_title": (0, 60), "invoice_tax_no": (0, 20),
          "invoice_bank": (0, 100), "invoice_address": (0, 200)}
REASON_MAX = 200


@dataclass(frozen=True)
class Application:
    name: str
    uscc: str
    contact_name: str
    contact_phone: str
    invoice_title: str = ""
    invoice_tax_no: str = ""
    invoice_bank: str = ""
    invoice_address: str = ""


@dataclass(frozen=True)
class CompanyView:
    id: int
    owner_member_id: int
    name: str
    uscc: str
    contact_name: str
    contact_phone: str
    invoice_title: str
    invoice_tax_no: str
    invoice_bank: str
    invoice_address: str
    status: str
    reason: str
    created_at: datetime
    decided_at: datetime | None

    @property
    def masked_phone(self) -> str:
        return mask_phone(self.contact_phone)

    @property
    def approved(self) -> bool:
        return self.status == APPROVED


def view(c: Company) -> CompanyView:
    return CompanyView(c.id, c.owner_member_id, c.name, c.uscc, c.contact_name, c.contact_phone, c.invoice_title,
                       c.invoice_tax_no, c.invoice_bank, c.invoice_address, c.status, c.reason,
                       c.created_at, c.decided_at)


def clean_text(raw: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", raw).split())


def clean_uscc(raw: str) -> str:
    code, problem = check_uscc(raw)
    if problem is not None:
        raise InvalidUsccError(code[:24], problem.value)
    return code


def clean_phone(raw: str) -> str:
    phone = re.sub(r"[\s-]", "", unicodedata.normalize("NFKC", raw))
    if not PHONE.match(phone):
        raise InvalidApplicationError("contact_phone")
    return phone


def clean_field(name: str, raw: str) -> str:
    text = clean_text(raw)
    lo, hi = LIMITS[name]
    if not lo <= len(text) <= hi or not text.isprintable():
        raise InvalidApplicationError(name)
    return text


def clean_application(a: Application) -> Application:
    """Every field checked (InvalidUsccError / InvalidApplicationError name the first bad one)."""
    tax = clean_text(a.invoice_tax_no).upper()
    return Application(
        clean_field("name", a.name), clean_uscc(a.uscc), clean_field("contact_name", a.contact_name),
        clean_phone(a.contact_phone), clean_field("invoice_title", a.invoice_title),
        clean_field("invoice_tax_no", tax), clean_field("invoice_bank", a.invoice_bank),
        clean_field("invoice_address", a.invoice_address))


async def member_company(uow: UnitOfWork, tenant: int, member: int) -> CompanyView | None:
    found = await B2bRepo(uow.session).company_of_member(tenant, member)
    return view(found) if found is not None else None


CACHE = "b2b.approved_company"    # session.info key: (tenant, member) → company, for one unit of work


def forget(uow: UnitOfWork) -> None:
    """Drop the unit of work's remembered companies (after a decision, a join, a group)."""
    uow.session.info.pop(CACHE, None)


async def business_member(uow: UnitOfWork, tenant: int, member: int) -> bool:
    """Whether `member` owns a company or buys for one (in any state). Every browse step of
    every member asks (the unit pricer's `passive`, the 企业专供 visibility), and nearly all
    are consumers, so the answer is kept per worker (`kept`: dropped when this worker
    commits a write to companies or their buyers, the ttl elsewhere). A member who is one
    is then asked in full (`approved_company`), never from memory."""
    return await kept(uow, ("b2b.business", tenant, member), lambda: _is_business(uow, tenant, member))


async def _is_business(uow: UnitOfWork, tenant: int, member: int) -> bool:
    r = B2bRepo(uow.session)
    return await r.company_of_member(tenant, member) is not None or await r.membership(tenant, member) is not None


async def approved_company(uow: UnitOfWork, tenant: int, member: int) -> CompanyView | None:
    """The approved company `member` buys for: as its owner, or as a buyer it invited.
    Remembered for the unit of work (the card, checkout and place_order each ask, for
    every member, consumers included: two queries once, not per question)."""
    cache: dict[tuple[int, int], CompanyView | None] = uow.session.info.setdefault(CACHE, {})
    if (tenant, member) in cache:
        return cache[(tenant, member)]
    r = B2bRepo(uow.session)
    found = await r.company_of_member(tenant, member)
    if found is None:
        joined = await r.membership(tenant, member)
        found = await r.company(tenant, joined) if joined is not None else None
    cache[(tenant, member)] = got = view(found) if found is not None and found.status == APPROVED else None
    return got


async def buyer_of(uow: UnitOfWork, tenant: int, member: int) -> CompanyView | None:
    """The company `member` joined as a buyer (not as its owner)."""
    r = B2bRepo(uow.session)
    joined = await r.membership(tenant, member)
    found = await r.company(tenant, joined) if joined is not None else None
    return view(found) if found is not None else None


async def apply(uow: UnitOfWork, tenant: int, member: int, application: Application, now: datetime) -> CompanyView:
    """File (or, after a rejection, file again) an application: pending until an admin
    decides. Refused (nothing written) when the member has one under review or approved,
    or another account in this shop holds the code."""
    a = clean_application(application)
    r = B2bRepo(uow.session)
    mine = await r.company_of_member(tenant, member)
    if mine is not None and mine.status != REJECTED:
        raise AlreadyAppliedError(mine.status)
    if await r.membership(tenant, member) is not None:
        raise AlreadyAppliedError("buyer")
    other = await r.company_by_uscc(tenant, a.uscc)
    if other is not None and (mine is None or other.id != mine.id):
        raise UsccTakenError(a.uscc)
    values: dict[str, object] = {
        "name": a.name, "uscc": a.uscc, "contact_name": a.contact_name, "contact_phone": a.contact_phone,
        "invoice_title": a.invoice_title, "invoice_tax_no": a.invoice_tax_no, "invoice_bank": a.invoice_bank,
        "invoice_address": a.invoice_address}
    if mine is None:
        row = Company(tenant_id=tenant, owner_member_id=member, status=PENDING, reason="", decided_by="",
                      created_at=now, **values)
        await r.add(row)
        company_id = row.id
    else:
        if not await r.reapply(tenant, mine.id, values, now):
            raise AlreadyAppliedError(PENDING)
        company_id = mine.id
    uow.audit(tenant, f"member:{member}", "b2b.apply", f"b2b_company:{company_id}",
              after={"name": a.name, "uscc": a.uscc, "contact_phone": mask_phone(a.contact_phone)})
    found = await r.company(tenant, company_id)
    assert found is not None
    await uow.session.refresh(found)
    return view(found)


async def decide(uow: UnitOfWork, tenant: int, company_id: int, *, approve: bool, reason: str, actor: str,
                 now: datetime) -> CompanyView:
    """An admin's decision on a pending application: one conditional update (a second
    decision, or one on a decided application, raises NotPendingError and writes
    nothing), audited, and pushed to the applicant (b2b.company_decided)."""
    reason = clean_text(reason)[:REASON_MAX]
    if not approve and not reason:
        raise InvalidApplicationError("reason")
    r = B2bRepo(uow.session)
    found = await r.company(tenant, company_id)
    if found is None:
        from social_mall.errors import NotFoundError

        raise NotFoundError("b2b_company", company_id)
    to = APPROVED if approve else REJECTED
    if not await r.decide(tenant, company_id, to, reason, actor, now):
        raise NotPendingError(company_id, found.status)
    forget(uow)
    uow.audit(tenant, actor, f"b2b.{'approve' if approve else 'reject'}", f"b2b_company:{company_id}",
              before={"status": PENDING}, after={"status": to, "reason": reason})
    uow.emit(CompanyDecided(tenant_id=tenant, member_id=found.owner_member_id, company_id=company_id,
                            name=found.name, approved=approve, reason=reason))
    await uow.session.refresh(found)
    return view(found)


async def list_companies(uow: UnitOfWork, tenant: int, status: str | None, page: int = 1, per_page: int = 20
                         ) -> Page[CompanyView]:
    page = max(page, 1)
    rows, total = await B2bRepo(uow.session).companies(tenant, status, (page - 1) * per_page, per_page)
    return Page(tuple(view(c) for c in rows), total, page, per_page)


async def company(uow: UnitOfWork, tenant: int, company_id: int) -> CompanyView | None:
    found = await B2bRepo(uow.session).company(tenant, company_id)
    return view(found) if found is not None else None


async def buyers_of(uow: UnitOfWork, tenant: int, company_ids: list[int]) -> dict[int, list[int]]:
    """company id → the member ids of its buyers (joined with an invite)."""
    r = B2bRepo(uow.session)
    out: dict[int, list[int]] = {}
    for cid in company_ids:
        out[cid] = [b.member_id for b in await r.buyers(tenant, cid)]
    return out
