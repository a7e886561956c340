"""Quotes (询价): a business member asks for prices on SKUs and quantities
(「询价 A1023 x 500, B77 100」); an admin answers in the console with a unit price per line
and an expiry (audited, pushed to the member); the member accepts (「接受报价 N」) once,
before it expires, and the order is placed at exactly the quoted prices, in the same
transaction as the quote's answered → accepted move (one conditional update: a second
acceptance, or one after the expiry, places nothing). The order then pays like any other;
an accepted quote stays used even if its order is cancelled unpaid (ask again)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update

from social_mall.errors import NotFoundError
from social_mall.orders.service import place_order
from social_mall.views import OrderView
from social_mall_b2b.accounts import approved_company
from social_mall_b2b.errors import InvalidApplicationError, NotBusinessError, QuoteLinesError, QuoteUnavailableError
from social_mall_b2b.events import QuoteAnswered
from social_mall_b2b.models import Company, Quote, QuoteLine, ShopTerms
from social_mall_b2b.repos import B2bRepo
from storage.uow import UnitOfWork

REQUESTED, ANSWERED, ACCEPTED = "requested", "answered", "accepted"
MAX_LINES = 50


@dataclass(frozen=True)
class QuoteLineView:
    sku_id: int
    name: str
    qty: int
    unit_fen: int

    @property
    def line_fen(self) -> int:
        return self.unit_fen * self.qty


@dataclass(frozen=True)
class QuoteView:
    id: int
    company_id: int
    company_name: str
    member_id: int
    status: str
    created_at: datetime
    expires_at: datetime | None
    order_id: int | None
    lines: tuple[QuoteLineView, ...]

    @property
    def total_fen(self) -> int:
        return sum(ln.line_fen for ln in self.lines)

    def live(self, now: datetime) -> bool:
        return self.status == ANSWERED and self.expires_at is not None and now < self.expires_at


async def _views(uow: UnitOfWork, tenant: int, rows: Sequence[Quote]) -> list[QuoteView]:
    if not rows:
        return []
    s = uow.session
    ids = [q.id for q in rows]
    lines = (await s.execute(select(QuoteLine).where(QuoteLine.tenant_id == tenant, QuoteLine.quote_id.in_(ids))
                             .order_by(QuoteLine.id))).scalars().all()
    names = {sk.id: f"{p.title} {sk.spec}".strip()
             for sk, p in await uow.catalog.skus_by_ids(tenant, list({ln.sku_id for ln in lines}))}
    companies = {c.id: c.name for c in (await s.execute(select(Company).where(
        Company.tenant_id == tenant, Company.id.in_([q.company_id for q in rows])))).scalars().all()}
    by_quote: dict[int, list[QuoteLineView]] = {}
    for ln in lines:
        by_quote.setdefault(ln.quote_id, []).append(QuoteLineView(ln.sku_id, names.get(ln.sku_id, str(ln.sku_id)),
                                                                  ln.qty, ln.unit_fen))
    return [QuoteView(q.id, q.company_id, companies.get(q.company_id, ""), q.member_id, q.status, q.created_at,
                      q.expires_at, q.order_id, tuple(by_quote.get(q.id, ()))) for q in rows]


async def get_quote(uow: UnitOfWork, tenant: int, quote_id: int, member: int | None = None) -> QuoteView:
    q = (await uow.session.execute(select(Quote).where(Quote.tenant_id == tenant, Quote.id == quote_id))
         ).scalar_one_or_none()
    if q is None or (member is not None and q.member_id != member):
        raise NotFoundError("b2b_quote", quote_id)
    return (await _views(uow, tenant, [q]))[0]


async def member_quotes(uow: UnitOfWork, tenant: int, member: int, limit: int = 10) -> list[QuoteView]:
    rows = (await uow.session.execute(select(Quote).where(Quote.tenant_id == tenant, Quote.member_id == member)
                                      .order_by(Quote.id.desc()).limit(limit))).scalars().all()
    return await _views(uow, tenant, rows)


async def list_quotes(uow: UnitOfWork, tenant: int, status: str | None = None, limit: int = 100) -> list[QuoteView]:
    where = [Quote.tenant_id == tenant] + ([Quote.status == status] if status else [])
    rows = (await uow.session.execute(select(Quote).where(*where).order_by(Quote.id.desc()).limit(limit))
            ).scalars().all()
    return await _views(uow, tenant, rows)


# -- the threshold: from how many pieces a line is worth a quote ----------------------------------

THRESHOLD_CACHE = "b2b.quote_from"     # session.info: tenant → threshold, for one unit of work
MAX_THRESHOLD = 999_999


async def quote_from(uow: UnitOfWork, tenant: int) -> int:
    """The tenant's quote threshold: a line of this many pieces or more is large enough for
    the buyer to be told 「数量较大，可回复「询价」获取报价」 (quick order, the card). 0: never."""
    cache: dict[int, int] = uow.session.info.setdefault(THRESHOLD_CACHE, {})
    if tenant not in cache:
        cache[tenant] = int(await uow.session.scalar(select(ShopTerms.quote_from_qty).where(
            ShopTerms.tenant_id == tenant)) or 0)
    return cache[tenant]


async def set_quote_from(uow: UnitOfWork, tenant: int, qty: int, actor: str) -> None:
    """Set the threshold (0 turns the hint off); audited with before/after."""
    if not 0 <= qty <= MAX_THRESHOLD:
        raise InvalidApplicationError("quote_from")
    row = (await uow.session.execute(select(ShopTerms).where(ShopTerms.tenant_id == tenant))).scalar_one_or_none()
    if row is None:
        row = ShopTerms(tenant_id=tenant)
        uow.session.add(row)
    before = int(row.quote_from_qty or 0)
    row.quote_from_qty = qty
    await uow.session.flush()
    uow.session.info.pop(THRESHOLD_CACHE, None)
    uow.audit(tenant, actor, "b2b.quote_from", f"tenant:{tenant}", before={"quote_from_qty": before},
              after={"quote_from_qty": qty})


async def request_quote(uow: UnitOfWork, tenant: int, member: int, items: Sequence[tuple[str, int]],
                        unparsed: Sequence[str], now: datetime) -> QuoteView:
    company = await approved_company(uow, tenant, member)
    if company is None:
        raise NotBusinessError()
    by_code = await B2bRepo(uow.session).skus_by_code(tenant, [c for c, _ in items])
    bad = list(unparsed) + [c for c, _ in items if c not in by_code]
    if bad or not items:
        raise QuoteLinesError("、".join(bad[:5]))
    if len(items) > MAX_LINES:
        raise QuoteLinesError(f"最多 {MAX_LINES} 行")
    q = Quote(tenant_id=tenant, company_id=company.id, member_id=member, status=REQUESTED, created_at=now,
              answered_by="")
    uow.session.add(q)
    await uow.session.flush()
    uow.session.add_all([QuoteLine(tenant_id=tenant, quote_id=q.id, sku_id=by_code[c], qty=n, unit_fen=0)
                         for c, n in items])
    await uow.session.flush()
    uow.audit(tenant, f"member:{member}", "b2b.quote_request", f"b2b_quote:{q.id}",
              after={"lines": [[by_code[c], n] for c, n in items]})
    return await get_quote(uow, tenant, q.id)


async def answer_quote(uow: UnitOfWork, tenant: int, quote_id: int, prices: Mapping[int, int], expires_at: datetime,
                       actor: str, now: datetime) -> QuoteView:
    """Price every line of a requested quote (fen > 0) and set its expiry (after now):
    one conditional move requested → answered; audited; pushed to the member."""
    view = await get_quote(uow, tenant, quote_id)
    if view.status != REQUESTED:
        raise QuoteUnavailableError(quote_id, view.status)
    if set(prices) != {ln.sku_id for ln in view.lines} or any(f <= 0 for f in prices.values()):
        raise InvalidApplicationError("quote_prices")
    if expires_at <= now:
        raise InvalidApplicationError("expires_at")
    s = uow.session
    res = await s.execute(update(Quote).where(Quote.tenant_id == tenant, Quote.id == quote_id,
                                              Quote.status == REQUESTED)
                          .values(status=ANSWERED, answered_at=now, answered_by=actor, expires_at=expires_at))
    if getattr(res, "rowcount", 0) != 1:
        raise QuoteUnavailableError(quote_id, "changed")
    for sku_id, fen in prices.items():
        await s.execute(update(QuoteLine).where(QuoteLine.tenant_id == tenant, QuoteLine.quote_id == quote_id,
                                                QuoteLine.sku_id == sku_id).values(unit_fen=fen))
    answered = await get_quote(uow, tenant, quote_id)
    uow.audit(tenant, actor, "b2b.quote_answer", f"b2b_quote:{quote_id}",
              after={"prices": {str(k): v for k, v in prices.items()}, "total_fen": answered.total_fen,
                     "expires_at": expires_at.isoformat()})
    uow.emit(QuoteAnswered(tenant_id=tenant, member_id=view.member_id, quote_id=quote_id,
                           total_fen=answered.total_fen, expires_at=expires_at.isoformat()))
    return answered


async def accept_quote(uow: UnitOfWork, tenant: int, member: int, quote_id: int, *, address_id: int, now: datetime,
                       timeout: timedelta, channel: str) -> OrderView:
    """The member's acceptance: answered → accepted (only before the expiry, only once)
    and the order at the quoted prices, in the caller's transaction (a refusal of
    place_order, e.g. short stock, rolls the acceptance back too)."""
    view = await get_quote(uow, tenant, quote_id, member)
    if not view.live(now):
        raise QuoteUnavailableError(quote_id, "expired" if view.status == ANSWERED else view.status)
    res = await uow.session.execute(update(Quote).where(
        Quote.tenant_id == tenant, Quote.id == quote_id, Quote.member_id == member, Quote.status == ANSWERED,
        Quote.expires_at > now).values(status=ACCEPTED))
    if getattr(res, "rowcount", 0) != 1:
        raise QuoteUnavailableError(quote_id, ACCEPTED)
    order = await place_order(uow, tenant, member, [(ln.sku_id, ln.qty) for ln in view.lines], address_id=address_id,
                              now=now, timeout=timeout, channel=channel, source=f"b2b:quote:{quote_id}",
                              unit_prices={ln.sku_id: ln.unit_fen for ln in view.lines})
    await uow.session.execute(update(Quote).where(Quote.tenant_id == tenant, Quote.id == quote_id)
                              .values(order_id=order.id))
    uow.audit(tenant, f"member:{member}", "b2b.quote_accept", f"b2b_quote:{quote_id}",
              after={"order_no": order.order_no, "goods_fen": order.goods_fen})
    return order
