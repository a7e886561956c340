"""Quick order (快速下单): a business member pastes SKU codes and quantities in one message;
each line is looked up, priced for the member through the core's unit-price seam (企业价,
its tier for that quantity) and checked (unknown code, off sale, below the minimum, not a
whole case, short stock), all in three queries whatever the number of lines. With no
problem the member confirms and checkout takes the lines (src "list"); place_order then
prices and checks them again, so what is charged is what was confirmed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from social_mall.pricing.unit import Wanted, unit_prices
from social_mall_b2b.prices import Terms, sku_terms
from social_mall_b2b.repos import B2bRepo
from social_mall_b2b.rules import check_qty
from storage.uow import UnitOfWork


@dataclass(frozen=True)
class QuickLine:
    code: str
    qty: int
    sku_id: int | None = None
    name: str = ""
    unit_fen: int = 0
    label: str = ""
    problem: str = ""      # "" | unknown | off_shelf | below_minimum | not_case_multiple | short_stock
    nearest: int = 0       # the nearest valid quantity (MOQ / case problems)
    left: int = 0          # stock left (short_stock)

    @property
    def line_fen(self) -> int:
        return self.unit_fen * self.qty


@dataclass(frozen=True)
class QuickQuote:
    lines: tuple[QuickLine, ...]
    unparsed: tuple[str, ...]
    quote_from: int = 0    # the tenant's quote threshold (quotes.quote_from; 0: none)

    @property
    def large(self) -> tuple[QuickLine, ...]:
        """The known lines at or past the quote threshold: worth asking for a quote."""
        if self.quote_from <= 0:
            return ()
        return tuple(ln for ln in self.lines if ln.sku_id is not None and ln.qty >= self.quote_from)

    @property
    def ok(self) -> bool:
        return bool(self.lines) and not self.unparsed and all(not ln.problem for ln in self.lines)

    @property
    def goods_fen(self) -> int:
        return sum(ln.line_fen for ln in self.lines if not ln.problem)

    @property
    def problems(self) -> int:
        return sum(1 for ln in self.lines if ln.problem) + len(self.unparsed)


async def quick_quote(uow: UnitOfWork, tenant: int, member: int, items: Sequence[tuple[str, int]],
                      unparsed: Sequence[str], now: datetime) -> QuickQuote:
    by_code = await B2bRepo(uow.session).skus_by_code(tenant, [c for c, _ in items])
    found = {s.id: (s, p) for s, p in await uow.catalog.skus_by_ids(tenant, list(by_code.values()))}
    wanted = [Wanted(by_code[c], found[by_code[c]][1].id, found[by_code[c]][0].price_fen, q)
              for c, q in items if c in by_code and by_code[c] in found]
    own = await unit_prices(uow, tenant, member, wanted, now)
    terms = await sku_terms(uow, tenant, [w.sku_id for w in wanted])
    lines: list[QuickLine] = []
    for code, qty in items:
        sku_id = by_code.get(code)
        if sku_id is None or sku_id not in found:
            lines.append(QuickLine(code, qty, problem="unknown"))
            continue
        s, p = found[sku_id]
        name = f"{p.title} {s.spec}".strip()
        price = own.get(sku_id)
        unit, label = (price.fen, price.label) if price is not None else (s.price_fen, "")
        base = QuickLine(code, qty, sku_id, name, unit, label)
        t = terms.get(sku_id, Terms())
        refusal = check_qty(qty, t.moq, t.case)
        if not (s.on_shelf and p.on_shelf):
            lines.append(QuickLine(code, qty, sku_id, name, unit, label, "off_shelf"))
        elif refusal is not None:
            lines.append(QuickLine(code, qty, sku_id, name, unit, label, refusal.problem.value, refusal.nearest))
        elif s.stock < qty:
            lines.append(QuickLine(code, qty, sku_id, name, unit, label, "short_stock", left=s.stock))
        else:
            lines.append(base)
    from social_mall_b2b.quotes import quote_from

    return QuickQuote(tuple(lines), tuple(unparsed), await quote_from(uow, tenant))


async def set_code(uow: UnitOfWork, tenant: int, sku_id: int, code: str, actor: str) -> None:
    """Give a SKU its quick-order code (unique in the tenant; InvalidApplicationError if
    malformed or another SKU's)."""
    from social_mall.errors import NotFoundError
    from social_mall_b2b.errors import InvalidApplicationError
    from social_mall_b2b.rules import SKU_CODE, normalize_code

    code = normalize_code(code)
    if not SKU_CODE.fullmatch(code):
        raise InvalidApplicationError("code")
    if not await uow.catalog.skus_by_ids(tenant, [sku_id]):
        raise NotFoundError("sku", sku_id)
    r = B2bRepo(uow.session)
    owner = await r.code_owner(tenant, code)
    if owner is not None and owner != sku_id:
        raise InvalidApplicationError("code_taken")
    await r.set_code(tenant, sku_id, code)
    uow.audit(tenant, actor, "b2b.sku_code", f"sku:{sku_id}", after={"code": code})
