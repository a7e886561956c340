"""Loyalty services: accounts (growth, level, points), sign-in, coupons (claim, issue,
lock/release/use/return), what paid, cancelled and refunded orders do to them, points
expiry, and the tenant's configuration. Each takes the caller's unit of work; the caller
commits.

Points: `loyalty_accounts.points` always equals the sum of the member's ledger rows; both
move in one savepoint (`LoyaltyRepo.post_points`). Every row has an idempotency `ref`, so
a retried event never credits twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from social_mall.errors import NotFoundError
from social_mall.loyalty import rules
from social_mall.loyalty.errors import CouponLimitError, CouponSoldOutError
from social_mall.loyalty.events import BirthdayCouponsIssued, CouponClaimed, CouponIssued, CouponUsed, LevelChanged
from social_mall.loyalty.rules import CouponStatus, Level, LoyaltyConfig, PointsKind
from social_mall.pricing.rules import Breakdown, CouponKind, CouponRule, Scope, Step, split_refund
from social_mall.members.service import members_with_birthday
from storage.loyalty_models import (
    BirthdayGift,
    Coupon,
    CouponTemplate,
    FlashPrice,
    FullReductionTier,
    LoyaltyLevel,
    OrderLoyalty,
)
from storage.loyalty_repos import LoyaltyRepo
from storage.uow import UnitOfWork, UowFactory

CS = CouponStatus


def repo(uow: UnitOfWork) -> LoyaltyRepo:
    return LoyaltyRepo(uow.session)


# -- configuration ---------------------------------------------------------------------------

async def config(uow: UnitOfWork, tenant: int) -> LoyaltyConfig:
    row = await repo(uow).settings(tenant)
    if row is None:
        return LoyaltyConfig()
    return LoyaltyConfig(
        earn_points_per_yuan=row.earn_points_per_yuan, growth_per_yuan=row.growth_per_yuan,
        redeem_points_per_yuan=max(row.redeem_points_per_yuan, 1), redeem_cap_bp=row.redeem_cap_bp,
        points_valid_days=row.points_valid_days, signin_points=row.signin_points,
        streak_days=row.streak_days, streak_bonus=row.streak_bonus,
        refund_points=row.refund_points if row.refund_points in rules.REFUND_POINTS_RULES else "share",
        refund_coupon=row.refund_coupon if row.refund_coupon in rules.REFUND_COUPON_RULES else "full",
    )


async def levels(uow: UnitOfWork, tenant: int) -> tuple[Level, ...]:
    rows = await repo(uow).levels(tenant)
    return tuple(Level(r.name, r.min_growth, r.discount_bp, r.benefits) for r in rows) or rules.DEFAULT_LEVELS


async def configure(uow: UnitOfWork, tenant: int, cfg: LoyaltyConfig) -> None:
    await repo(uow).put_settings(tenant, {
        "earn_points_per_yuan": cfg.earn_points_per_yuan, "growth_per_yuan": cfg.growth_per_yuan,
        "redeem_points_per_yuan": cfg.redeem_points_per_yuan, "redeem_cap_bp": cfg.redeem_cap_bp,
        "points_valid_days": cfg.points_valid_days, "signin_points": cfg.signin_points,
        "streak_days": cfg.streak_days, "streak_bonus": cfg.streak_bonus,
        "refund_points": cfg.refund_points, "refund_coupon": cfg.refund_coupon,
    })


async def set_levels(uow: UnitOfWork, tenant: int, new: Sequence[Level]) -> None:
    if not new or min(lv.min_growth for lv in new) != 0:
        raise ValueError("levels must start at growth 0")
    await repo(uow).replace_levels(tenant, [
        LoyaltyLevel(tenant_id=tenant, name=lv.name, min_growth=lv.min_growth, discount_bp=lv.discount_bp,
                     benefits=lv.benefits) for lv in new])


async def add_flash_price(uow: UnitOfWork, tenant: int, sku_id: int, price_fen: int, *,
                          starts_at: datetime, ends_at: datetime) -> None:
    if price_fen <= 0 or ends_at <= starts_at:
        raise ValueError("bad flash price")
    await repo(uow).add(FlashPrice(tenant_id=tenant, sku_id=sku_id, price_fen=price_fen,
                                   starts_at=starts_at, ends_at=ends_at))


async def add_full_reduction(uow: UnitOfWork, tenant: int, threshold_fen: int, off_fen: int, *,
                             starts_at: datetime | None = None, ends_at: datetime | None = None) -> None:
    if off_fen <= 0 or threshold_fen < off_fen:
        raise ValueError("bad tier")
    await repo(uow).add(FullReductionTier(tenant_id=tenant, threshold_fen=threshold_fen, off_fen=off_fen,
                                          starts_at=starts_at, ends_at=ends_at))


# -- accounts --------------------------------------------------------------------------------

@dataclass(frozen=True)
class CouponView:
    id: int
    template_id: int
    name: str
    kind: str
    threshold_fen: int
    off_fen: int
    off_bp: int
    cap_fen: int
    status: str
    valid_until: datetime | None

    def rule(self, scope: Scope = Scope.ALL, scope_ids: frozenset[int] = frozenset()) -> CouponRule:
        return CouponRule(self.id, self.name, CouponKind(self.kind), self.threshold_fen, self.off_fen,
                          self.off_bp, self.cap_fen, scope, scope_ids)


@dataclass(frozen=True)
class AccountView:
    member_id: int
    level: Level
    next_level: Level | None
    growth: int
    points: int
    streak: int
    signed_today: bool
    coupons: tuple[CouponView, ...]     # usable now

    @property
    def to_next(self) -> int:
        return self.next_level.min_growth - self.growth if self.next_level else 0


def coupon_view(c: Coupon, t: CouponTemplate) -> CouponView:
    return CouponView(c.id, t.id, t.name, t.kind, t.threshold_fen, t.off_fen, t.off_bp, t.cap_fen, c.status,
                      c.valid_until)


def coupon_rule(c: Coupon, t: CouponTemplate) -> CouponRule:
    return CouponRule(c.id, t.name, CouponKind(t.kind), t.threshold_fen, t.off_fen, t.off_bp, t.cap_fen,
                      Scope(t.scope), frozenset(int(i) for i in (t.scope_ids or [])))


async def _account(uow: UnitOfWork, tenant: int, member: int) -> tuple[int, str, int, str, int]:
    lvls = await levels(uow, tenant)
    acc = await repo(uow).ensure_account(tenant, member, rules.level_for(0, lvls).name)
    return acc.growth, acc.level, acc.points, acc.last_signin, acc.streak


async def usable_coupons(uow: UnitOfWork, tenant: int, member: int, now: datetime
                         ) -> list[tuple[Coupon, CouponTemplate]]:
    rows = await repo(uow).coupons(tenant, member, [CS.AVAILABLE])
    return [(c, t) for c, t in rows if rules.usable(now, c.valid_from, c.valid_until)]


async def account(uow: UnitOfWork, tenant: int, member: int, now: datetime) -> AccountView:
    growth, _, points, last, streak = await _account(uow, tenant, member)
    lvls = await levels(uow, tenant)
    coupons = tuple(coupon_view(c, t) for c, t in await usable_coupons(uow, tenant, member, now))
    return AccountView(member, rules.level_for(growth, lvls), rules.next_level(growth, lvls), growth, points,
                       streak, last == rules.local_day(now).isoformat(), coupons)


async def points_balance(uow: UnitOfWork, tenant: int, member: int) -> int:
    acc = await repo(uow).account(tenant, member)
    return acc.points if acc else 0


async def _credit(uow: UnitOfWork, tenant: int, member: int, n: int, kind: PointsKind, ref: str,
                  now: datetime, note: str = "") -> bool:
    if n <= 0:
        return False
    await _account(uow, tenant, member)
    exp = rules.expiry(now, await config(uow, tenant))
    return await repo(uow).post_points(tenant, member, n, kind, ref, note=note, expires_at=exp, now=now) == "ok"


async def _debit(uow: UnitOfWork, tenant: int, member: int, n: int, kind: PointsKind, ref: str,
                 now: datetime, note: str = "") -> str:
    if n <= 0:
        return "ok"
    await _account(uow, tenant, member)
    return await repo(uow).post_points(tenant, member, -n, kind, ref, note=note, now=now)


async def spend_points(uow: UnitOfWork, tenant: int, member: int, n: int, ref: str, now: datetime) -> str:
    """Spend points at checkout: "ok", "duplicate" or "insufficient" (nothing written)."""
    return await _debit(uow, tenant, member, n, PointsKind.SPEND, ref, now, "下单抵扣")


async def adjust_points(uow: UnitOfWork, tenant: int, member: int, delta: int, *, ref: str, actor: str,
                        note: str, now: datetime) -> str:
    """An admin's correction (audited)."""
    if delta > 0:
        result = "ok" if await _credit(uow, tenant, member, delta, PointsKind.ADJUST, ref, now, note) else "duplicate"
    else:
        result = await _debit(uow, tenant, member, -delta, PointsKind.ADJUST, ref, now, note)
    uow.audit(tenant, actor, "points.adjust", f"member:{member}", after={"delta": delta, "note": note,
                                                                         "result": result})
    return result


async def _add_growth(uow: UnitOfWork, tenant: int, member: int, delta: int) -> None:
    if delta == 0:
        return
    await _account(uow, tenant, member)
    await repo(uow).add_growth(tenant, member, delta)
    await refresh_level(uow, tenant, member)


async def refresh_level(uow: UnitOfWork, tenant: int, member: int) -> None:
    """Bring the stored level in line with the growth value; a change is pushed
    (`loyalty.level_changed`)."""
    r = repo(uow)
    acc = await r.account(tenant, member)
    if acc is None:
        return
    assert acc is not None
    lvls = await levels(uow, tenant)
    new = rules.level_for(acc.growth, lvls)
    if new.name != acc.level and await r.set_level(tenant, member, acc.level, new.name):
        old = next((lv for lv in lvls if lv.name == acc.level), None)
        up = old is None or new.min_growth > old.min_growth
        uow.emit(LevelChanged(tenant_id=tenant, member_id=member, old_level=acc.level, new_level=new.name,
                              growth=acc.growth, up=up))


# -- sign-in ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class SignIn:
    already: bool
    points: int
    streak: int
    balance: int


async def sign_in(uow: UnitOfWork, tenant: int, member: int, now: datetime) -> SignIn:
    """Once per Shanghai day; consecutive days build a streak (every Nth day a bonus)."""
    _, _, _, last, streak = await _account(uow, tenant, member)
    today = rules.local_day(now)
    cfg = await config(uow, tenant)
    if last == today.isoformat():
        return SignIn(True, 0, streak, await points_balance(uow, tenant, member))
    prev = datetime.strptime(last, "%Y-%m-%d").date() if last else None
    new_streak = rules.next_streak(prev, streak, today)
    if not await repo(uow).sign_in(tenant, member, last, today.isoformat(), new_streak):
        return SignIn(True, 0, streak, await points_balance(uow, tenant, member))  # a second tap won
    n = rules.signin_points(new_streak, cfg)
    await _credit(uow, tenant, member, n, PointsKind.SIGNIN, f"signin:{member}:{today.isoformat()}", now)
    return SignIn(False, n, new_streak, await points_balance(uow, tenant, member))


# -- coupons -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TemplateView:
    id: int
    name: str
    kind: str
    threshold_fen: int
    off_fen: int
    off_bp: int
    cap_fen: int
    left: int | None       # None: unlimited
    held: int
    per_member: int

    @property
    def can_claim(self) -> bool:
        return (self.left is None or self.left > 0) and (self.per_member <= 0 or self.held < self.per_member)


async def create_template(
    uow: UnitOfWork, tenant: int, *, name: str, kind: CouponKind, threshold_fen: int = 0, off_fen: int = 0,
    off_bp: int = 0, cap_fen: int = 0, scope: Scope = Scope.ALL, scope_ids: Sequence[int] = (),
    valid_from: datetime | None = None, valid_until: datetime | None = None, valid_days: int = 0,
    per_member: int = 1, total_qty: int = 0, claimable: bool = True, issue_on: str = "",
) -> int:
    if kind == CouponKind.AMOUNT and off_fen <= 0 or kind == CouponKind.PERCENT and not 0 < off_bp < 10_000:
        raise ValueError("bad coupon amount")
    row = await repo(uow).add_template(CouponTemplate(
        tenant_id=tenant, name=name[:40], kind=kind, threshold_fen=max(threshold_fen, 0), off_fen=off_fen,
        off_bp=off_bp, cap_fen=cap_fen, scope=scope, scope_ids=list(scope_ids), valid_from=valid_from,
        valid_until=valid_until, valid_days=valid_days, per_member=per_member, total_qty=total_qty,
        claimed_qty=0, claimable=claimable, issue_on=issue_on, active=True))
    return row.id


async def claimable(uow: UnitOfWork, tenant: int, member: int, now: datetime) -> list[TemplateView]:
    r = repo(uow)
    out = []
    for t in await r.claimable(tenant, now):
        out.append(TemplateView(t.id, t.name, t.kind, t.threshold_fen, t.off_fen, t.off_bp, t.cap_fen,
                                t.total_qty - t.claimed_qty if t.total_qty else None,
                                await r.held(tenant, t.id, member), t.per_member))
    return out


async def issuable(uow: UnitOfWork, tenant: int, now: datetime) -> list[TemplateView]:
    """The templates an administrator may give a member (active, not past their end; the
    per-member limit doesn't bind an admin, the total does)."""
    return [TemplateView(t.id, t.name, t.kind, t.threshold_fen, t.off_fen, t.off_bp, t.cap_fen,
                         t.total_qty - t.claimed_qty if t.total_qty else None, 0, t.per_member)
            for t in await repo(uow).issuable(tenant, now)]


async def member_coupons(uow: UnitOfWork, tenant: int, member: int) -> list[CouponView]:
    """Every coupon the member holds or held (available, in an unpaid order, used)."""
    return [coupon_view(c, t) for c, t in await repo(uow).coupons(tenant, member)]


GIVEN_IN_CONSOLE = "console"   # the channel of a coupon an admin gave
GIVEN_BY_JOB = "job"           # … of one given automatically (an event's or the birthday job's)


async def claim(uow: UnitOfWork, tenant: int, member: int, template_id: int, *, now: datetime,
                source: str = "claim", check_limit: bool = True, announce: bool = True,
                channel: str = "") -> CouponView:
    """Give the member one coupon of the template. The total quantity is taken by a
    conditional UPDATE (never exceeded, whatever the concurrency); the per-member limit by
    a unique (template, member, n-th) slot, so two taps of one member can't both win.
    A coupon not claimed by the member is told as `loyalty.coupon_issued` (with the
    `channel` of whoever gave it: "console", "job") and pushed unless `announce` is off (the
    caller sends one message for several); one the member claimed is told as
    `loyalty.coupon_claimed` (with the `channel` they claimed it on), never pushed."""
    r = repo(uow)
    t = await r.template(tenant, template_id)
    if t is None or not t.active:
        raise NotFoundError("coupon_template", template_id)
    if source == "claim" and (not t.claimable or (t.valid_until is not None and t.valid_until <= now)):
        raise NotFoundError("coupon_template", template_id)
    held = await r.held(tenant, template_id, member)
    if check_limit and t.per_member > 0 and held >= t.per_member:
        raise CouponLimitError(t.name, t.per_member)
    start, until = rules.coupon_window(now, valid_from=t.valid_from, valid_until=t.valid_until,
                                       valid_days=t.valid_days)
    coupon = Coupon(tenant_id=tenant, template_id=t.id, member_id=member, seq=held + 1, status=CS.AVAILABLE,
                    source=source[:40], valid_from=start, valid_until=until, claimed_at=now)
    async with uow.session.begin_nested():   # a refusal below rolls the count back too
        if not await r.take_one(tenant, template_id):
            raise CouponSoldOutError(t.name)
        if not await r.add_coupon(coupon):
            raise CouponLimitError(t.name, t.per_member)
    if source != "claim":
        uow.emit(CouponIssued(tenant_id=tenant, member_id=member, coupon_id=coupon.id, name=t.name, source=source,
                              channel=channel, push=announce))
    else:
        uow.emit(CouponClaimed(tenant_id=tenant, member_id=member, coupon_id=coupon.id, name=t.name, channel=channel))
    return coupon_view(coupon, t)


async def issue_coupon(uow: UnitOfWork, tenant: int, member: int, template_id: int, *, actor: str,
                       now: datetime) -> CouponView:
    """An admin gives a coupon (outside the per-member limit; the total still holds). Audited."""
    c = await claim(uow, tenant, member, template_id, now=now, source=f"admin:{actor}"[:40], check_limit=False,
                    channel=GIVEN_IN_CONSOLE)
    uow.audit(tenant, actor, "coupon.issue", f"member:{member}", after={"template_id": template_id,
                                                                        "coupon_id": c.id})
    return c


async def issue_on_event(uow: UnitOfWork, tenant: int, member: int, event: str, now: datetime) -> list[CouponView]:
    """Coupons of the templates issued on `event` (member.joined, birthday,
    groupbuy.succeeded): one each, skipped quietly when sold out or already held."""
    out = []
    for t in await repo(uow).issued_on(tenant, event):
        try:
            out.append(await claim(uow, tenant, member, t.id, now=now, source=f"event:{event}", channel=GIVEN_BY_JOB))
        except (CouponSoldOutError, CouponLimitError):
            continue
    return out


async def issue_on_event_many(uow: UnitOfWork, tenant: int, members: Sequence[int], event: str,
                              now: datetime) -> int:
    """`issue_on_event` for many members in one unit of work (a crowd's member.joined): the
    templates are read once. Returns how many coupons were given."""
    templates = await repo(uow).issued_on(tenant, event)
    given = 0
    for member in members:
        for t in templates:
            try:
                await claim(uow, tenant, member, t.id, now=now, source=f"event:{event}", channel=GIVEN_BY_JOB)
                given += 1
            except (CouponSoldOutError, CouponLimitError):
                continue
    return given


# -- birthday coupons ---------------------------------------------------------------------------

BIRTHDAY = "birthday"


class _NothingGiven(Exception):
    """Rolls the year's gift row back: every birthday template was sold out (a later run
    may still give them, after the merchant tops the quantity up)."""


async def give_birthday_coupons(uow: UnitOfWork, tenant: int, member: int, now: datetime
                                ) -> list[CouponView] | None:
    """This year's birthday coupons for the member (one of each template issued on
    "birthday", outside the per-member limit: it is a yearly gift). None when there is
    nothing to give or the member had this year's already.

    Once per member per year whatever runs at the same time: the (tenant, member, year)
    gift row is inserted first, and a concurrent run's insert of the same key fails (on
    PostgreSQL it waits for the first transaction and fails when it commits)."""
    r = repo(uow)
    templates = await r.issued_on(tenant, BIRTHDAY)
    if not templates:
        return None
    year = rules.local_day(now).year
    gift = BirthdayGift(tenant_id=tenant, member_id=member, year=year, coupons=0, created_at=now)
    given: list[CouponView] = []
    try:
        async with uow.session.begin_nested():
            if not await r.add_birthday_gift(gift):
                return None
            for t in templates:
                try:
                    given.append(await claim(uow, tenant, member, t.id, now=now, source=f"event:{BIRTHDAY}",
                                             check_limit=False, announce=False, channel=GIVEN_BY_JOB))
                except (CouponSoldOutError, CouponLimitError):
                    continue
            if not given:
                raise _NothingGiven()
            await r.set_birthday_gift_count(gift.id, len(given))
    except _NothingGiven:
        return None
    uow.emit(BirthdayCouponsIssued(tenant_id=tenant, member_id=member, year=year, count=len(given),
                                   names="、".join(c.name for c in given)))
    return given


async def issue_birthday_coupons(factory: UowFactory, now: datetime, *, batch: int = 500) -> int:
    """The birthday job: members whose birthday is today in Shanghai get the tenant's
    birthday coupons, one member per transaction. Safe to run as often as wanted and on
    several workers at once (the yearly gift row decides). Returns members served."""
    today = rules.local_day(now)
    async with factory() as uow:
        tenants = await repo(uow).tenants_issuing_on(BIRTHDAY)
    served = 0
    for tenant in tenants:
        after = 0
        while True:
            async with factory() as uow:
                ids = list(await members_with_birthday(uow, tenant, today, after_id=after, limit=batch))
                done = await repo(uow).birthday_gifted(tenant, today.year, ids)
            for member in ids:
                if member in done:
                    continue
                async with factory() as uow:
                    if await give_birthday_coupons(uow, tenant, member, now):
                        await uow.commit()
                        served += 1
            if len(ids) < batch:
                break
            after = ids[-1]
    return served


async def lock_coupon(uow: UnitOfWork, tenant: int, member: int, coupon_id: int, order_id: int,
                      now: datetime) -> bool:
    found = await repo(uow).coupon(tenant, coupon_id)
    if found is None or found[0].member_id != member or not rules.usable(now, found[0].valid_from,
                                                                          found[0].valid_until):
        return False
    return await repo(uow).move_coupon(tenant, coupon_id, CS.AVAILABLE, CS.LOCKED, order_id=order_id)


# -- what orders do ---------------------------------------------------------------------------------

# `loyalty_order_state.paid_fen` of an order whose refund was handled before its payment
# (outbox deliveries retry independently): the payment is still to be booked.
UNBOOKED = -1


class OrderStateChanged(Exception):
    """Another delivery for the same order moved its state first: the delivery is retried."""


async def on_order_paid(uow: UnitOfWork, tenant: int, order_id: int, member: int, paid_fen: int,
                        now: datetime, *, channel: str = "") -> bool:
    """Growth and points for a paid order; its coupon becomes used (`loyalty.coupon_used`,
    with the order's `channel`). Once per order."""
    r = repo(uow)
    cfg = await config(uow, tenant)
    pts = rules.earned(paid_fen, cfg.earn_points_per_yuan)
    growth = rules.earned(paid_fen, cfg.growth_per_yuan)
    if not await r.start_order_state(OrderLoyalty(tenant_id=tenant, order_id=order_id, member_id=member,
                                                  paid_fen=paid_fen, earned_points=pts, earned_growth=growth,
                                                  refs=[])):
        return await _book_after_refunds(uow, tenant, order_id, paid_fen, pts, growth, now)
    d = await r.discount(tenant, order_id)
    if d is not None and d.coupon_id is not None:
        if await r.move_coupon(tenant, d.coupon_id, CS.LOCKED, CS.USED, used_at=now):
            found = await r.coupon(tenant, d.coupon_id)
            off = Breakdown.from_json(d.breakdown).off(Step.COUPON) if d.breakdown else 0
            uow.emit(CouponUsed(tenant_id=tenant, member_id=member, coupon_id=d.coupon_id, order_id=order_id,
                                off_fen=off, source=found[0].source if found is not None else "", channel=channel))
    await _credit(uow, tenant, member, pts, PointsKind.EARN, f"o{order_id}:earn", now, "消费获得")
    await _add_growth(uow, tenant, member, growth)
    return True


async def _book_after_refunds(uow: UnitOfWork, tenant: int, order_id: int, paid_fen: int, pts: int, growth: int,
                              now: datetime) -> bool:
    """The payment of an order whose refunds were handled first (they found nothing earned
    and left the state UNBOOKED): earn now what the refunds leave, as if in order. False
    when the payment was booked already (a repeat delivery)."""
    r = repo(uow)
    state = await r.order_state(tenant, order_id)
    if state is None or state.paid_fen != UNBOOKED:
        return False
    refunded = state.refunded_fen
    claw, claw_growth = rules.share(pts, refunded, paid_fen), rules.share(growth, refunded, paid_fen)
    if not await r.advance_order_state(tenant, order_id, refunded, paid_before=UNBOOKED, paid_fen=paid_fen,
                                       earned_points=pts, earned_growth=growth,
                                       clawed_points=state.clawed_points + claw,
                                       clawed_growth=state.clawed_growth + claw_growth):
        raise OrderStateChanged(order_id)
    owner = state.member_id
    d = await r.discount(tenant, order_id)
    if d is not None and d.coupon_id is not None:
        found = await r.coupon(tenant, d.coupon_id)
        back = refunded >= paid_fen and found is not None and (found[0].valid_until is None
                                                                or found[0].valid_until > now)
        if back:
            await r.move_coupon(tenant, d.coupon_id, CS.LOCKED, CS.AVAILABLE, order_id=None)
        else:
            await r.move_coupon(tenant, d.coupon_id, CS.LOCKED, CS.USED, used_at=now)
    # what the refunds already took is never credited: the ledger gets the net earning
    await _credit(uow, tenant, owner, pts - claw, PointsKind.EARN, f"o{order_id}:earn", now, "消费获得（已扣除退款部分）")
    await _add_growth(uow, tenant, owner, growth - claw_growth)
    return True


async def on_order_cancelled(uow: UnitOfWork, tenant: int, order_id: int, now: datetime) -> None:
    """An unpaid order closed: its coupon and points come back (once)."""
    r = repo(uow)
    d = await r.discount(tenant, order_id)
    if d is None:
        return
    if d.coupon_id is not None:
        await r.move_coupon(tenant, d.coupon_id, CS.LOCKED, CS.AVAILABLE, order_id=None)
    if d.points_used:
        await _credit(uow, tenant, d.member_id, d.points_used, PointsKind.RELEASE, f"o{order_id}:release", now,
                      "订单取消退回")


@dataclass(frozen=True)
class RefundOutcome:
    points_returned: int
    points_clawed: int
    coupon_returned: bool
    line_refunds: tuple[int, ...]


async def on_order_refunded(uow: UnitOfWork, tenant: int, order_id: int, member: int, *, refund_fen: int,
                            paid_fen: int, full: bool, ref: str, now: datetime) -> RefundOutcome | None:
    """Apply one refund per the rules in loyalty/rules.py. `ref` identifies the refund
    event (a retried delivery is a no-op). None when this refund was applied already."""
    r = repo(uow)
    d = await r.discount(tenant, order_id)
    owner = d.member_id if d is not None else member
    state = await r.order_state(tenant, order_id)
    if state is None:   # refunded before the paid event was handled: nothing earned yet (booked later)
        await r.start_order_state(OrderLoyalty(tenant_id=tenant, order_id=order_id, member_id=owner,
                                               paid_fen=UNBOOKED, earned_points=0, earned_growth=0, refs=[]))
        state = await r.order_state(tenant, order_id)
        assert state is not None
    if ref in (state.refs or []):
        return None
    before = state.refunded_fen
    refunded = min(before + refund_fen, paid_fen)
    if full:
        refunded = paid_fen
    used = d.points_used if d is not None else 0
    cfg = await config(uow, tenant)
    ret = max(rules.points_back(cfg.refund_points, used, refunded, paid_fen) - state.returned_points, 0)
    claw = rules.share(state.earned_points, refunded, paid_fen) - state.clawed_points
    growth = rules.share(state.earned_growth, refunded, paid_fen) - state.clawed_growth
    if not await r.advance_order_state(
        tenant, order_id, before, paid_before=state.paid_fen, refunded_fen=refunded,
        returned_points=state.returned_points + ret,
        clawed_points=state.clawed_points + claw, clawed_growth=state.clawed_growth + growth,
        refs=[*(state.refs or []), ref],
    ):
        raise OrderStateChanged(order_id)   # another refund or the payment moved it: retried, then applied once
    if ret > 0:
        await _credit(uow, tenant, owner, ret, PointsKind.RETURN, f"o{order_id}:ret:{ref}", now, "退款退回")
    clawed = 0
    if claw > 0:   # all of it, spent or not: the balance may go negative (owed, see rules.py)
        await _account(uow, tenant, owner)
        if await r.post_points(tenant, owner, -claw, PointsKind.CLAWBACK, f"o{order_id}:claw:{ref}",
                               note="退款扣回", now=now, may_owe=True) == "ok":
            clawed = claw
    await _add_growth(uow, tenant, owner, -growth)
    returned = False
    if refunded >= paid_fen and cfg.refund_coupon == "full" and d is not None and d.coupon_id is not None:
        found = await r.coupon(tenant, d.coupon_id)
        if found is not None and (found[0].valid_until is None or found[0].valid_until > now):
            returned = await r.move_coupon(tenant, d.coupon_id, CS.USED, CS.AVAILABLE, order_id=None, used_at=None)
    parts: tuple[int, ...] = ()
    if d is not None:
        b = Breakdown.from_json(d.breakdown)
        pays = [ln.pay_fen for ln in b.lines] + [b.shipping_pay_fen]
        done = list(d.line_refunds or [0] * len(pays))
        remaining = [p - x for p, x in zip(pays, done, strict=True)]
        amount = min(refund_fen, sum(remaining))
        parts = tuple(split_refund(remaining, amount))
        await r.set_line_refunds(tenant, order_id, done, [x + p for x, p in zip(done, parts, strict=True)])
    return RefundOutcome(max(ret, 0), clawed, returned, parts)


# -- expiry ------------------------------------------------------------------------------------------

async def expire_member_points(uow: UnitOfWork, tenant: int, member: int, now: datetime) -> int:
    r = repo(uow)
    entries = [rules.Entry(e.id, e.delta, e.kind, e.expires_at, e.lot_id) for e in await r.ledger(tenant, member)]
    total = 0
    for lot, n in rules.due_to_expire(entries, now):
        if await r.post_points(tenant, member, -n, PointsKind.EXPIRE, f"exp:{lot}", lot_id=lot, now=now,
                               note="积分过期") == "ok":
            total += n
    return total


async def expire_points(factory: UowFactory, now: datetime) -> int:
    """The sweeper: expire what is due, one member per transaction. Idempotent (ref per lot)."""
    async with factory() as uow:
        due = await repo(uow).with_due_points(now)
    total = 0
    for tenant, member in due:
        async with factory() as uow:
            total += await expire_member_points(uow, tenant, member, now)
            await uow.commit()
    return total


async def ledger_consistent(uow: UnitOfWork, tenant: int, member: int) -> bool:
    """The balance column equals the sum of the ledger (a reconciliation check)."""
    return await points_balance(uow, tenant, member) == await repo(uow).ledger_sum(tenant, member)


def days(n: int) -> timedelta:
    return timedelta(days=n)
