"""Pure rules of the B2B module: the 统一社会信用代码 check digit (GB 32100-2015), which
price a company pays for a quantity (price lists, tiers, sale vs override), and minimum
order quantities and case packs with the nearest valid quantity. No I/O."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

BP = 10_000

# -- 统一社会信用代码 (GB 32100-2015) ---------------------------------------------------------

USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"     # 31 characters: no I, O, S, V, Z
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
USCC_LEN = 18


def normalize_uscc(raw: str) -> str:
    """Full-width to half-width, spaces and dashes dropped, upper case."""
    text = unicodedata.normalize("NFKC", raw)
    return "".join(ch for ch in text if not ch.isspace() and ch != "-").upper()


def uscc_check_char(first17: str) -> str:
    """The 18th character for the first 17 (all in USCC_CHARS)."""
    total = sum(USCC_CHARS.index(ch) * w for ch, w in zip(first17, USCC_WEIGHTS, strict=True))
    return USCC_CHARS[(31 - total % 31) % 31]


class UsccProblem(StrEnum):
    LENGTH = "length"        # not 18 characters
    CHARS = "chars"          # a character outside the code's alphabet (I O S V Z, letters in the region code…)
    CHECK = "check"          # the check digit doesn't match: a typo


def check_uscc(raw: str) -> tuple[str, UsccProblem | None]:
    """(the normalized code, None) when valid; (it, the problem) when not."""
    code = normalize_uscc(raw)
    if len(code) != USCC_LEN or not code.isascii():
        return code, UsccProblem.LENGTH
    if any(ch not in USCC_CHARS for ch in code) or not code[2:8].isdigit():
        return code, UsccProblem.CHARS
    if uscc_check_char(code[:17]) != code[17]:
        return code, UsccProblem.CHECK
    return code, None


# -- prices --------------------------------------------------------------------------------

class ListKind(StrEnum):
    SALE = "sale"            # applies only when cheaper than the price otherwise due
    OVERRIDE = "override"    # always applies (the lowest override when several)


@dataclass(frozen=True)
class Tier:
    min_qty: int
    price_fen: int


@dataclass(frozen=True)
class PriceList:
    id: int
    name: str
    kind: ListKind
    percent_off_bp: int                     # 0: none; 1500 = 15% off retail for SKUs without a price
    tiers: dict[int, tuple[Tier, ...]]      # sku id → tiers, ascending min_qty
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    active: bool = True

    def live(self, now: datetime) -> bool:
        return self.active and (self.starts_at is None or self.starts_at <= now) and \
            (self.ends_at is None or now < self.ends_at)

    def unit(self, sku_id: int, retail_fen: int, qty: int) -> int | None:
        """This list's unit price for `qty` of the SKU: the tier with the largest minimum
        not above `qty`, else the percentage off retail (rounded down to the fen, at least
        1 fen), else None (the list doesn't price it)."""
        tiers = self.tiers.get(sku_id, ())
        hit = None
        for t in tiers:
            if t.min_qty <= qty:
                hit = t
        if hit is not None:
            return hit.price_fen
        if 0 < self.percent_off_bp < BP:
            return max(retail_fen * (BP - self.percent_off_bp) // BP, 1)
        return None


def company_price(lists: Sequence[PriceList], sku_id: int, retail_fen: int, qty: int, now: datetime
                  ) -> tuple[int, int] | None:
    """(unit fen, list id) a company pays for `qty` of a SKU under its live lists, or None
    when no list prices it (the company then pays retail). The price otherwise due is the
    lowest override list's price (retail without one); a sale list applies only below it.
    `lists` are all of the company's (its own and every group's): a company in several
    groups gets the best of them, never loses one group's price to another's."""
    due: tuple[int, int] | None = None
    for pl in lists:
        if pl.kind == ListKind.OVERRIDE and pl.live(now):
            u = pl.unit(sku_id, retail_fen, qty)
            if u is not None and (due is None or u < due[0]):
                due = (u, pl.id)
    best = due
    ceiling = due[0] if due is not None else retail_fen
    for pl in lists:
        if pl.kind == ListKind.SALE and pl.live(now):
            u = pl.unit(sku_id, retail_fen, qty)
            if u is not None and u < ceiling and (best is None or u < best[0]):
                best = (u, pl.id)
    return best


def tiers_note(lists: Sequence[PriceList], sku_id: int, retail_fen: int, now: datetime, moq: int = 1,
               case: int = 1) -> str:
    """A card's line for a SKU: its tier prices (「10件起 ¥8.50」) and order rules."""
    starts = sorted({t.min_qty for pl in lists if pl.live(now) for t in pl.tiers.get(sku_id, ())})
    parts: list[str] = []
    for q in starts:
        if q <= max(moq, 1):
            continue
        hit = company_price(lists, sku_id, retail_fen, q, now)
        if hit is not None:
            parts.append(f"{q}件起 ¥{yuan(hit[0])}")
    if moq > 1:
        parts.append(f"起订 {moq} 件")
    if case > 1:
        parts.append(f"按 {case} 件整箱订")
    return "，".join(parts)


def yuan(fen: int) -> str:
    return f"{fen // 100}" if fen % 100 == 0 else f"{fen // 100}.{fen % 100:02d}"


# -- minimum order quantity and case packs -------------------------------------------------------

class QtyProblem(StrEnum):
    BELOW_MINIMUM = "below_minimum"
    NOT_CASE_MULTIPLE = "not_case_multiple"


@dataclass(frozen=True)
class QtyRefusal:
    problem: QtyProblem
    qty: int
    moq: int
    case: int
    nearest: int          # the nearest valid quantity (never below the minimum)


def valid_qty(qty: int, moq: int, case: int) -> bool:
    return qty >= max(moq, 1) and qty % max(case, 1) == 0


def nearest_valid(qty: int, moq: int, case: int) -> int:
    """The valid quantity closest to `qty` (ties: the larger; never below the minimum)."""
    case = max(case, 1)
    least = -(-max(moq, 1) // case) * case        # the smallest multiple of the case at or above the minimum
    if qty <= least:
        return least
    down, up = qty // case * case, -(-qty // case) * case
    down = max(down, least)
    return down if qty - down < up - qty else up


def check_qty(qty: int, moq: int, case: int) -> QtyRefusal | None:
    if valid_qty(qty, moq, case):
        return None
    problem = QtyProblem.BELOW_MINIMUM if qty < max(moq, 1) else QtyProblem.NOT_CASE_MULTIPLE
    return QtyRefusal(problem, qty, max(moq, 1), max(case, 1), nearest_valid(qty, moq, case))


# -- console input: tier lines -----------------------------------------------------------------

MONEY = re.compile(r"([0-9]{1,8})(?:\.([0-9]{1,2}))?")
QTY_MAX = 999_999


def parse_yuan(raw: str) -> int | None:
    """"12.5" → 1250 fen (never a float); None when not an amount."""
    m = MONEY.fullmatch(raw.strip()) if raw.strip().isascii() else None
    if m is None:
        return None
    return int(m[1]) * 100 + int((m[2] or "0").ljust(2, "0"))


def parse_tier_lines(text: str) -> tuple[list[tuple[int, int, int]], int | None]:
    """Console lines 「SKU编号 起订数量 单价」 (e.g. 「12 10 8.50」, one tier each) →
    ([(sku id, min qty, fen)], None), or ([], the 1-based number of the first bad line).
    A SKU may have several tiers; a repeated (SKU, min qty) is a bad line."""
    out: list[tuple[int, int, int]] = []
    seen: set[tuple[int, int]] = set()
    for n, line in enumerate(unicodedata.normalize("NFKC", text).splitlines(), start=1):
        parts = line.replace(",", " ").split()
        if not parts:
            continue
        if len(parts) != 3 or not all(p.isascii() for p in parts) or not parts[0].isdigit() or \
                not parts[1].isdigit() or len(parts[0]) > 15 or len(parts[1]) > 6:
            return [], n
        sku, qty, fen = int(parts[0]), int(parts[1]), parse_yuan(parts[2])
        if sku <= 0 or not 1 <= qty <= QTY_MAX or fen is None or fen <= 0 or (sku, qty) in seen:
            return [], n
        seen.add((sku, qty))
        out.append((sku, qty, fen))
    return out, None


# -- quick order: 「快速下单 A1023 x 24, B77 12」 ---------------------------------------------------

CODE_MAX = 32
SKU_CODE = re.compile(r"[A-Z0-9][A-Z0-9_-]{0,31}")
# a code, then x / × / * (spaces around allowed) or at least one space, then the quantity,
# then the end or a separator: the code is matched lazily, so 「A1023x24」 is A1023 × 24
_ITEM = re.compile(r"([A-Za-z0-9][A-Za-z0-9_-]{0,31}?)(?:\s*[x×*]\s*|\s+)([0-9]{1,6})(?=$|[\s,;、])")
_SEP = re.compile(r"[\s,;、]+")
QUICK_MAX_LINES = 200


def normalize_code(raw: str) -> str:
    return unicodedata.normalize("NFKC", raw).strip().upper()


def parse_quick_order(text: str) -> tuple[list[tuple[str, int]], list[str]]:
    """The items of a pasted quick order, in order ([(CODE, qty)]: codes upper case, a
    code repeated keeps its place and adds up) and the fragments that are not an item.
    Full-width digits and letters (NFKC), ×/x/*, spaces, commas, 、 and semicolons."""
    body = unicodedata.normalize("NFKC", text).replace("，", ",").replace("；", ";")
    items: dict[str, int] = {}
    bad: list[str] = []
    pos = 0
    while pos < len(body):
        sep = _SEP.match(body, pos)
        if sep:
            pos = sep.end()
            continue
        m = _ITEM.match(body, pos)
        if m is None:
            nxt = _SEP.search(body, pos)
            end = nxt.start() if nxt else len(body)
            bad.append(body[pos:end][:CODE_MAX])
            pos = end
            continue
        code, qty = m.group(1).upper(), int(m.group(2))
        if qty <= 0:
            bad.append(m.group(0)[:CODE_MAX])
        else:
            items[code] = items.get(code, 0) + qty
        pos = m.end()
    return list(items.items()), bad
