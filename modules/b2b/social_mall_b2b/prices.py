"""Prices for business accounts: the module's unit pricer (the core's seam,
social_mall/pricing/unit.py) and the console's customer groups, price lists with tiers,
and SKU order terms (minimum order quantity, case pack).

A member whose company is approved pays the best price its lists give (its own lists and
every list of each of its groups: rules.company_price), labelled 「企业价」, with no retail
promotion on those lines; it must order at least the SKU's minimum and in whole cases. Everyone else (a
consumer, an applicant under review) is not priced here: retail as before."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from social_mall.errors import NotFoundError
from social_mall.pricing.unit import UnitPrice, Wanted
from social_mall.views import OrderView
from social_mall_b2b.accounts import approved_company, business_member, forget
from social_mall_b2b.errors import InvalidApplicationError, QuantityRefusedError
from social_mall_b2b.models import CustomerGroup, ListPrice, PriceListRow
from social_mall_b2b.repos import B2bRepo
from social_mall_b2b.rules import ListKind, PriceList, Tier, check_qty, company_price, tiers_note
from storage.uow import UnitOfWork

LABEL = "企业价"
MAX_QTY = 999_999     # per line, for an approved business account (retail: the core's 99)


@dataclass(frozen=True)
class Terms:
    moq: int = 1
    case: int = 1


async def company_lists(uow: UnitOfWork, tenant: int, company_id: int, sku_ids: Sequence[int] | None
                        ) -> list[PriceList]:
    """Every list that may price the company: its own and those of each of its groups
    (rules.company_price picks the best of them per SKU and quantity)."""
    r = B2bRepo(uow.session)
    rows = await r.lists_for(tenant, company_id)
    tiers: dict[int, dict[int, list[Tier]]] = {row.id: {} for row in rows}
    for p in await r.prices(tenant, [row.id for row in rows], sku_ids):
        tiers[p.list_id].setdefault(p.sku_id, []).append(Tier(p.min_qty, p.price_fen))
    return [PriceList(row.id, row.name, ListKind(row.kind), row.percent_off_bp,
                      {k: tuple(sorted(v, key=lambda t: t.min_qty)) for k, v in tiers[row.id].items()},
                      row.starts_at, row.ends_at, row.active) for row in rows]


async def sku_terms(uow: UnitOfWork, tenant: int, sku_ids: Sequence[int]) -> dict[int, Terms]:
    return {t.sku_id: Terms(t.moq, t.case_pack) for t in await B2bRepo(uow.session).terms(tenant, sku_ids)}


class B2bPricer:
    """The unit pricer the module registers (registry.add_unit_pricer)."""

    key = "b2b"

    async def prices(self, uow: UnitOfWork, tenant: int, member: int, lines: Sequence[Wanted],
                     now: datetime) -> Mapping[int, UnitPrice]:
        company = await approved_company(uow, tenant, member)
        if company is None:
            return {}
        skus = [ln.sku_id for ln in lines]
        lists = await company_lists(uow, tenant, company.id, skus)
        terms = await sku_terms(uow, tenant, skus)
        from social_mall_b2b.vat import rates

        from social_mall_b2b.promos import allowed

        vat = await rates(uow, tenant, list({ln.product_id for ln in lines}))
        from social_mall_b2b.quotes import quote_from

        steps = (await allowed(uow, tenant)).steps
        large = await quote_from(uow, tenant)
        out: dict[int, UnitPrice] = {}
        for ln in lines:
            t = terms.get(ln.sku_id, Terms())
            hit = company_price(lists, ln.sku_id, ln.retail_fen, max(ln.qty, t.moq), now)
            if hit is not None:
                note = tiers_note(lists, ln.sku_id, ln.retail_fen, now, t.moq, t.case)
                rate = vat.get(ln.product_id, 0)
                if rate:
                    note = f"{note}（含税，增值税 {rate / 100:g}%）" if note else f"含税，增值税 {rate / 100:g}%"
                if large:
                    ask = f"{large} 件以上数量较大，可回复「询价」获取报价"
                    note = f"{note}；{ask}" if note else ask
                out[ln.sku_id] = UnitPrice(hit[0], LABEL, note, admits=steps)
        return out

    async def placed(self, uow: UnitOfWork, tenant: int, order: OrderView, now: datetime) -> None:
        """A buyer's order counts against its monthly budget (budgets.py)."""
        from social_mall_b2b.budgets import count_order

        if await B2bRepo(uow.session).membership(tenant, order.member_id) is not None:
            await count_order(uow, tenant, order, now)

    async def max_qty(self, uow: UnitOfWork, tenant: int, member: int) -> int:
        """A business account buys by the case: up to MAX_QTY a line."""
        return MAX_QTY if await approved_company(uow, tenant, member) is not None else 0

    async def passive(self, uow: UnitOfWork, tenant: int, member: int) -> bool:
        """A member of no company (approved or not) is priced, checked and counted by
        nothing here: the core's order desk may write its order."""
        if not await business_member(uow, tenant, member):   # a consumer: no query (kept per worker)
            return True
        return await B2bRepo(uow.session).membership(tenant, member) is None \
            and await approved_company(uow, tenant, member) is None

    async def check(self, uow: UnitOfWork, tenant: int, member: int, lines: Sequence[Wanted],
                    now: datetime) -> None:
        if await approved_company(uow, tenant, member) is None:
            return
        terms = await sku_terms(uow, tenant, [ln.sku_id for ln in lines])
        for ln in lines:
            t = terms.get(ln.sku_id)
            refusal = check_qty(ln.qty, t.moq, t.case) if t is not None else None
            if refusal is not None:
                found = {s.id: (s, p) for s, p in await uow.catalog.skus_by_ids(tenant, [ln.sku_id])}
                s, p = found[ln.sku_id]
                raise QuantityRefusedError(f"{p.title} {s.spec}".strip(), refusal.problem.value, ln.qty,
                                           refusal.moq, refusal.case, refusal.nearest)


PRICER = B2bPricer()


# -- the console: groups, price lists, terms ------------------------------------------------

@dataclass(frozen=True)
class ListInput:
    name: str
    kind: ListKind
    group_id: int | None
    company_id: int | None
    percent_off_bp: int
    starts_at: datetime | None
    ends_at: datetime | None
    active: bool
    tiers: tuple[tuple[int, int, int], ...]     # (sku id, min qty, fen)


@dataclass(frozen=True)
class ListView:
    id: int
    name: str
    kind: str
    group_id: int | None
    company_id: int | None
    percent_off_bp: int
    starts_at: datetime | None
    ends_at: datetime | None
    active: bool
    tiers: tuple[tuple[int, int, int], ...]


async def add_group(uow: UnitOfWork, tenant: int, name: str, actor: str) -> int:
    name = " ".join(name.split())
    if not 1 <= len(name) <= 40:
        raise InvalidApplicationError("group_name")
    r = B2bRepo(uow.session)
    if any(g.name == name for g in await r.groups(tenant)):
        raise InvalidApplicationError("group_name")
    row = CustomerGroup(tenant_id=tenant, name=name)
    await r.add(row)
    uow.audit(tenant, actor, "b2b.group_add", f"b2b_group:{row.id}", after={"name": name})
    return row.id


async def groups(uow: UnitOfWork, tenant: int) -> list[tuple[int, str]]:
    return [(g.id, g.name) for g in await B2bRepo(uow.session).groups(tenant)]


async def company_groups(uow: UnitOfWork, tenant: int, company_ids: Sequence[int]) -> dict[int, list[int]]:
    return await B2bRepo(uow.session).group_ids(tenant, company_ids)


async def set_company_groups(uow: UnitOfWork, tenant: int, company_id: int, group_ids: Sequence[int],
                             actor: str) -> None:
    """Put a company in exactly these customer groups (none: only its own lists). A group
    or company of another tenant reads as not found: nothing is written. Audited."""
    r = B2bRepo(uow.session)
    wanted = sorted(set(group_ids))
    for g in wanted:
        if await r.group(tenant, g) is None:
            raise NotFoundError("b2b_group", g)
    if await r.company(tenant, company_id) is None:
        raise NotFoundError("b2b_company", company_id)
    before = (await r.group_ids(tenant, [company_id]))[company_id]
    await r.set_groups(tenant, company_id, wanted)
    forget(uow)
    uow.audit(tenant, actor, "b2b.company_group", f"b2b_company:{company_id}", before={"group_ids": before},
              after={"group_ids": wanted})


async def _check_targets(uow: UnitOfWork, tenant: int, data: ListInput) -> None:
    r = B2bRepo(uow.session)
    if (data.group_id is None) == (data.company_id is None):
        raise InvalidApplicationError("target")
    if data.group_id is not None and await r.group(tenant, data.group_id) is None:
        raise NotFoundError("b2b_group", data.group_id)
    if data.company_id is not None and await r.company(tenant, data.company_id) is None:
        raise NotFoundError("b2b_company", data.company_id)
    skus = {s.id for s, _ in await uow.catalog.skus_by_ids(tenant, list({t[0] for t in data.tiers}))}
    missing = sorted({t[0] for t in data.tiers} - skus)
    if missing:
        raise NotFoundError("sku", missing[0])


async def save_list(uow: UnitOfWork, tenant: int, list_id: int | None, data: ListInput, actor: str) -> int:
    """Create or replace a price list and its tiers (audited). A SKU, group or company of
    another tenant reads as not found: nothing is written."""
    await _check_targets(uow, tenant, data)
    r = B2bRepo(uow.session)
    values = {"name": data.name, "kind": data.kind.value, "group_id": data.group_id, "company_id": data.company_id,
              "percent_off_bp": data.percent_off_bp, "starts_at": data.starts_at, "ends_at": data.ends_at,
              "active": data.active}
    if list_id is None:
        row = PriceListRow(tenant_id=tenant, **values)
        await r.add(row)
        before: dict[str, object] | None = None
    else:
        found = await r.price_list(tenant, list_id)
        if found is None:
            raise NotFoundError("b2b_price_list", list_id)
        before = {"kind": found.kind, "percent_off_bp": found.percent_off_bp, "active": found.active}
        for k, v in values.items():
            setattr(found, k, v)
        row = found
    await r.replace_prices(tenant, row.id, [ListPrice(tenant_id=tenant, list_id=row.id, sku_id=s, min_qty=q,
                                                      price_fen=f) for s, q, f in data.tiers])
    uow.audit(tenant, actor, "b2b.price_list_save", f"b2b_price_list:{row.id}", before=before,
              after={**{k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in values.items()},
                     "tiers": [list(t) for t in data.tiers]})
    return row.id


async def list_views(uow: UnitOfWork, tenant: int) -> list[ListView]:
    r = B2bRepo(uow.session)
    rows = await r.lists(tenant)
    tiers: dict[int, list[tuple[int, int, int]]] = {row.id: [] for row in rows}
    for p in await r.prices(tenant, [row.id for row in rows], None):
        tiers[p.list_id].append((p.sku_id, p.min_qty, p.price_fen))
    return [ListView(row.id, row.name, row.kind, row.group_id, row.company_id, row.percent_off_bp, row.starts_at,
                     row.ends_at, row.active, tuple(tiers[row.id])) for row in rows]


async def set_terms(uow: UnitOfWork, tenant: int, sku_id: int, moq: int, case: int, actor: str) -> None:
    if not (1 <= moq <= 999_999 and 1 <= case <= 999_999):
        raise InvalidApplicationError("terms")
    if not await uow.catalog.skus_by_ids(tenant, [sku_id]):
        raise NotFoundError("sku", sku_id)
    await B2bRepo(uow.session).set_terms(tenant, sku_id, moq, case)
    uow.audit(tenant, actor, "b2b.sku_terms", f"sku:{sku_id}", after={"moq": moq, "case_pack": case})


async def all_terms(uow: UnitOfWork, tenant: int) -> list[tuple[int, int, int]]:
    return [(t.sku_id, t.moq, t.case_pack) for t in await B2bRepo(uow.session).terms(tenant, None)]
