"""The promotions pipeline: pure, integer fen, no I/O.

The order of the steps is fixed and documented here (and shown to the buyer line by line):

1. **Member-level discount** (会员折扣): every line at the member level's rate
   (`level_bp`, 10000 = no discount, 9500 = 95折), rounded down to the fen.
2. **Flash price** (限时折扣): a line with an active flash price pays the lower of its
   step-1 amount and `flash unit price × qty` (the two never stack).
3. **Full reduction** (满减): the best tier whose threshold the goods subtotal (after 1–2)
   reaches takes its amount off, spread over the lines in proportion.
4. **Coupon** (优惠券): amount off with a threshold, percentage off with a cap, or free
   shipping; only the lines the coupon is valid for count towards its threshold and share
   its discount.
5. **Points** (积分抵扣): at the tenant's rate, at most `cap_bp` of the goods left to pay
   and never more than the member has; only whole-fen amounts (the points used are rounded
   down to a multiple that converts exactly).

A line priced by a module says which steps it admits (`PriceLine.admits`, from the
module's `UnitPrice`, see pricing/unit.py; `fixed`: none): a step never touches a line
that does not admit it, and its threshold (满减, a coupon's) and its share (points' cap)
count only the lines that do. A line admitting no step pays its own price.

Every step keeps at least `MIN_PAY_FEN` of goods to pay (WeChat Pay refuses zero). A
discount spread over lines uses the largest-remainder method: the parts sum exactly to the
discount and no line goes below zero. Refunds are split back over the lines the same way
(`split_refund`), so no fen is ever lost or created.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from math import gcd

BP = 10_000          # basis points: 100%
MIN_PAY_FEN = 1      # the goods of an order always cost at least one fen


class CouponKind(StrEnum):
    AMOUNT = "amount"        # 满 threshold 减 off_fen
    PERCENT = "percent"      # off_bp off (1500 = 85折), at most cap_fen (0: no cap)
    SHIPPING = "shipping"    # free shipping


class Scope(StrEnum):
    ALL = "all"
    CATEGORIES = "categories"
    PRODUCTS = "products"


class Step(StrEnum):
    LEVEL = "level"
    FLASH = "flash"
    FULL = "full"
    COUPON = "coupon"
    POINTS = "points"


STEP_LABELS: dict[Step, str] = {
    Step.LEVEL: "会员折扣", Step.FLASH: "限时折扣", Step.FULL: "满减", Step.COUPON: "优惠券",
    Step.POINTS: "积分抵扣",
}
ORDER: tuple[Step, ...] = (Step.LEVEL, Step.FLASH, Step.FULL, Step.COUPON, Step.POINTS)
ALL_STEPS: frozenset[Step] = frozenset(ORDER)


@dataclass(frozen=True)
class PriceLine:
    """One order line as place_order priced it (group prices included)."""

    sku_id: int
    product_id: int
    category_id: int
    unit_fen: int
    qty: int
    fixed: bool = False    # a module's price with promotions off: no step touches this line
    admits: frozenset[Step] = ALL_STEPS   # the steps that may touch this line (a module's choice)

    @property
    def base_fen(self) -> int:
        return self.unit_fen * self.qty

    def takes(self, step: Step) -> bool:
        """May `step` touch this line?"""
        return not self.fixed and step in self.admits


@dataclass(frozen=True)
class FullReduction:
    threshold_fen: int
    off_fen: int


@dataclass(frozen=True)
class CouponRule:
    id: int
    name: str
    kind: CouponKind
    threshold_fen: int = 0
    off_fen: int = 0
    off_bp: int = 0
    cap_fen: int = 0
    scope: Scope = Scope.ALL
    scope_ids: frozenset[int] = frozenset()

    def covers(self, line: PriceLine) -> bool:
        if not line.takes(Step.COUPON):
            return False
        if self.scope == Scope.CATEGORIES:
            return line.category_id in self.scope_ids
        if self.scope == Scope.PRODUCTS:
            return line.product_id in self.scope_ids
        return True


@dataclass(frozen=True)
class PointsRule:
    points_per_yuan: int = 100   # how many points make ¥1
    cap_bp: int = 5000           # at most this share of the goods left to pay

    @property
    def unit(self) -> tuple[int, int]:
        """(points, fen) of the smallest exact exchange: 100/yuan → (1, 1); 30/yuan → (3, 10)."""
        g = gcd(self.points_per_yuan, 100)
        return self.points_per_yuan // g, 100 // g


@dataclass(frozen=True)
class PricingContext:
    """Everything the pipeline needs, gathered by the service."""

    level_name: str = ""
    level_bp: int = BP
    flash: dict[int, int] = field(default_factory=dict)      # sku id → flash unit price
    full_reductions: tuple[FullReduction, ...] = ()
    coupon: CouponRule | None = None
    points_rule: PointsRule = PointsRule()
    points_balance: int = 0
    points_wanted: int = 0


@dataclass(frozen=True)
class PricedLine:
    sku_id: int
    base_fen: int
    offs: tuple[int, ...]      # per step, in ORDER

    @property
    def pay_fen(self) -> int:
        return self.base_fen - sum(self.offs)


@dataclass(frozen=True)
class Adjustment:
    step: Step
    label: str
    fen: int


@dataclass(frozen=True)
class Breakdown:
    lines: tuple[PricedLine, ...]
    adjustments: tuple[Adjustment, ...]     # only the steps that took something off
    goods_fen: int
    shipping_fen: int
    shipping_off_fen: int
    coupon_id: int | None                   # the coupon applied (None: none or not applicable)
    points_used: int
    points_fen: int

    @property
    def goods_pay_fen(self) -> int:
        return sum(line.pay_fen for line in self.lines)

    @property
    def shipping_pay_fen(self) -> int:
        return self.shipping_fen - self.shipping_off_fen

    @property
    def discount_fen(self) -> int:
        return self.goods_fen - self.goods_pay_fen + self.shipping_off_fen

    @property
    def total_fen(self) -> int:
        return self.goods_pay_fen + self.shipping_pay_fen

    def off(self, step: Step) -> int:
        return sum(a.fen for a in self.adjustments if a.step == step)

    def to_json(self) -> dict[str, object]:
        return {
            "lines": [{"sku_id": ln.sku_id, "base_fen": ln.base_fen, "offs": list(ln.offs)} for ln in self.lines],
            "adjustments": [{"step": a.step.value, "label": a.label, "fen": a.fen} for a in self.adjustments],
            "goods_fen": self.goods_fen, "shipping_fen": self.shipping_fen,
            "shipping_off_fen": self.shipping_off_fen, "coupon_id": self.coupon_id,
            "points_used": self.points_used, "points_fen": self.points_fen,
        }

    @staticmethod
    def from_json(doc: dict[str, object]) -> Breakdown:
        lines = doc["lines"]
        adjs = doc["adjustments"]
        assert isinstance(lines, list) and isinstance(adjs, list)
        coupon = doc.get("coupon_id")
        return Breakdown(
            lines=tuple(PricedLine(int(ln["sku_id"]), int(ln["base_fen"]), tuple(int(o) for o in ln["offs"]))
                        for ln in lines),
            adjustments=tuple(Adjustment(Step(a["step"]), str(a["label"]), int(a["fen"])) for a in adjs),
            goods_fen=_int(doc["goods_fen"]), shipping_fen=_int(doc["shipping_fen"]),
            shipping_off_fen=_int(doc["shipping_off_fen"]),
            coupon_id=coupon if isinstance(coupon, int) else None,
            points_used=_int(doc["points_used"]), points_fen=_int(doc["points_fen"]),
        )


def _int(v: object) -> int:
    assert isinstance(v, int)
    return v


# -- splitting -----------------------------------------------------------------------------

def split(amount: int, weights: Sequence[int]) -> list[int]:
    """`amount` fen over `weights` in proportion (largest remainder; ties to the earlier
    part). Exact: the parts sum to `amount`; with 0 <= amount <= sum(weights), every part
    lies between 0 and its weight."""
    if amount < 0 or any(w < 0 for w in weights):
        raise ValueError("negative amount or weight")
    total = sum(weights)
    if total == 0:
        if amount:
            raise ValueError("nothing to split over")
        return [0] * len(weights)
    parts = [amount * w // total for w in weights]
    rems = sorted(range(len(weights)), key=lambda i: (-(amount * weights[i] % total), i))
    left = amount - sum(parts)
    for i in rems[:left]:
        parts[i] += 1
    return parts


def split_refund(remaining: Sequence[int], refund_fen: int) -> list[int]:
    """Split one refund over what each part (order lines, then shipping) still holds.
    Parts never exceed what is left, so a series of refunds ending at the paid amount
    returns every line exactly what it paid."""
    if refund_fen > sum(remaining):
        raise ValueError("refund larger than what is left")
    return split(refund_fen, remaining)


# -- the pipeline --------------------------------------------------------------------------

def _spread(amounts: list[int], idx: Sequence[int], off: int) -> list[int]:
    """Per-line parts of `off` over the lines `idx` (in proportion to what they pay now)."""
    parts = [0] * len(amounts)
    for i, p in zip(idx, split(off, [amounts[i] for i in idx]), strict=True):
        parts[i] = p
    return parts


def coupon_off(coupon: CouponRule, eligible_fen: int, shipping_fen: int) -> tuple[int, int]:
    """(goods off, shipping off) a coupon gives on `eligible_fen` of matching goods;
    (0, 0) when its threshold is not reached."""
    if eligible_fen <= 0 or eligible_fen < coupon.threshold_fen:
        return 0, 0
    if coupon.kind == CouponKind.SHIPPING:
        return 0, shipping_fen
    if coupon.kind == CouponKind.AMOUNT:
        return min(coupon.off_fen, eligible_fen), 0
    off = eligible_fen * min(max(coupon.off_bp, 0), BP) // BP
    if coupon.cap_fen > 0:
        off = min(off, coupon.cap_fen)
    return off, 0


def price(lines: Sequence[PriceLine], shipping_fen: int, ctx: PricingContext) -> Breakdown:
    if not lines:
        raise ValueError("no lines")
    if any(ln.unit_fen <= 0 or ln.qty <= 0 for ln in lines) or shipping_fen < 0:
        raise ValueError("bad line")
    n = len(lines)
    amounts = [ln.base_fen for ln in lines]
    offs: list[list[int]] = [[0] * len(ORDER) for _ in range(n)]
    adjustments: list[Adjustment] = []

    def free(step: Step) -> list[int]:  # the lines `step` may touch
        return [i for i, ln in enumerate(lines) if ln.takes(step)]

    def budget(step: Step) -> int:  # what `step` may still take off the goods (≥ MIN_PAY_FEN left)
        idx = set(free(step))
        rest = sum(a for i, a in enumerate(amounts) if i not in idx)
        return max(sum(amounts[i] for i in idx) - max(MIN_PAY_FEN - rest, 0), 0)

    def take(step: Step, parts: list[int], label: str) -> None:
        k = ORDER.index(step)
        for i, p in enumerate(parts):
            offs[i][k] += p
            amounts[i] -= p
        if sum(parts):
            adjustments.append(Adjustment(step, label, sum(parts)))

    # 1. member level
    bp = min(max(ctx.level_bp, 0), BP)
    if bp < BP:
        parts = [a - a * bp // BP if lines[i].takes(Step.LEVEL) else 0 for i, a in enumerate(amounts)]
        over = sum(parts) - budget(Step.LEVEL)
        if over > 0:
            parts = split(sum(parts) - over, parts)
        take(Step.LEVEL, parts, f"{ctx.level_name or '会员'}折扣")

    # 2. flash price
    parts = [0] * n
    for i, ln in enumerate(lines):
        flash = ctx.flash.get(ln.sku_id) if ln.takes(Step.FLASH) else None
        if flash is not None and flash > 0:
            parts[i] = max(amounts[i] - flash * ln.qty, 0)
    over = sum(parts) - budget(Step.FLASH)
    if over > 0:
        parts = split(sum(parts) - over, parts)
    take(Step.FLASH, parts, STEP_LABELS[Step.FLASH])

    # 3. full reduction: the best tier reached
    full = free(Step.FULL)
    subtotal = sum(amounts[i] for i in full)
    tiers = [t for t in ctx.full_reductions if t.off_fen > 0 and subtotal >= t.threshold_fen]
    if tiers:
        best = max(tiers, key=lambda t: (t.off_fen, -t.threshold_fen))
        off = min(best.off_fen, budget(Step.FULL))
        take(Step.FULL, _spread(amounts, full, off),
             f"满{best.threshold_fen // 100}减{_yuan(best.off_fen)}")

    # 4. coupon
    coupon_id: int | None = None
    shipping_off = 0
    if ctx.coupon is not None:
        idx = [i for i, ln in enumerate(lines) if ctx.coupon.covers(ln)]
        goods_off, ship_off = coupon_off(ctx.coupon, sum(amounts[i] for i in idx), shipping_fen)
        goods_off = min(goods_off, budget(Step.COUPON))
        if goods_off or ship_off:
            coupon_id = ctx.coupon.id
            parts = _spread(amounts, idx, goods_off)
            k = ORDER.index(Step.COUPON)
            for i, p in enumerate(parts):
                offs[i][k] += p
                amounts[i] -= p
            shipping_off = ship_off
            adjustments.append(Adjustment(Step.COUPON, ctx.coupon.name, goods_off + ship_off))

    # 5. points
    pts, fen_per = ctx.points_rule.unit
    want = max(min(ctx.points_wanted, ctx.points_balance), 0)
    points = free(Step.POINTS)
    cap_fen = sum(amounts[i] for i in points) * min(max(ctx.points_rule.cap_bp, 0), BP) // BP
    max_fen = min(cap_fen, budget(Step.POINTS))
    units = min(want // pts, max_fen // fen_per)
    points_used, points_fen = units * pts, units * fen_per
    if points_fen:
        take(Step.POINTS, _spread(amounts, points, points_fen), f"{STEP_LABELS[Step.POINTS]}（{points_used} 积分）")

    return Breakdown(
        lines=tuple(PricedLine(ln.sku_id, ln.base_fen, tuple(o)) for ln, o in zip(lines, offs, strict=True)),
        adjustments=tuple(adjustments), goods_fen=sum(ln.base_fen for ln in lines),
        shipping_fen=shipping_fen, shipping_off_fen=shipping_off, coupon_id=coupon_id,
        points_used=points_used, points_fen=points_fen,
    )


def max_points(lines: Sequence[PriceLine], shipping_fen: int, ctx: PricingContext) -> int:
    """The most points this order could take (what 「用积分」 without a number uses)."""
    return price(lines, shipping_fen, replace(ctx, points_wanted=ctx.points_balance)).points_used


def best_coupon(
    lines: Sequence[PriceLine], shipping_fen: int, ctx: PricingContext, coupons: Sequence[CouponRule]
) -> CouponRule | None:
    """The coupon that saves the most on this order (ties: the earlier one, i.e. the one
    expiring first when the caller sorts so); None when none applies."""
    best: tuple[int, CouponRule] | None = None
    for c in coupons:
        b = price(lines, shipping_fen, replace(ctx, coupon=c, points_wanted=0))
        if b.coupon_id is None:
            continue
        saved = b.off(Step.COUPON)
        if saved > 0 and (best is None or saved > best[0]):
            best = (saved, c)
    return best[1] if best else None


def _yuan(fen: int) -> str:
    return f"{fen // 100}" if fen % 100 == 0 else f"{fen // 100}.{fen % 100:02d}"
