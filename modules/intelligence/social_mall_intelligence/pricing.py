"""Dynamic pricing, the services (over a unit of work; the caller commits): the
merchant's rules per SKU (cost, guard rails, signals), the job's step that applies them,
rollback, the preview over the last 30 days and the A/B test readout.

A rule changes the SKU's list price (`skus.price_fen`) for everyone at once: every
member sees and pays the same price at one moment; member levels, B2B price lists and
flash prices stay the separate mechanisms they are, applied on top by the core. Checkout
charges the total the member confirmed or says the price changed (the core's
`expect_total_fen` rule), so a step between the card and 「确认」 never charges a price
nobody was shown.

Every automatic change is one row of `intel_price_changes` and one audit entry
(`intel.price.auto`, actor `rule:<id>`), written in the transaction that moves the price
with a conditional UPDATE (`WHERE price_fen = before`). A SKU moves at most once per
step bucket (STEP_SECONDS), so a job run twice, or by two workers, moves it once.
"""

from __future__ import annotations

import logging
import secrets
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy.exc import IntegrityError

from social_mall.console import rules as crules
from social_mall.console.errors import InvalidInputError
from social_mall.errors import NotFoundError
from social_mall.plugins import PriceHold
from social_mall.pricing.service import active_flash_prices
from social_mall_intelligence import rules_pricing as R
from social_mall_intelligence.models import PriceChange, PriceRule, PriceTest
from social_mall_intelligence.pricing_repos import CANCELLED, PAID, PricingRepo
from storage.uow import UnitOfWork, UowFactory

log = logging.getLogger(__name__)

STEP_SECONDS = 900              # the job's period and the bucket a SKU moves at most once in
HISTORY_DAYS = 30
MAX_RULES = 2000
MAX_PCT = 90
STEPS_PER_HOUR = 3600 // STEP_SECONDS
UNITS = ("sku", "day")          # A/B test units: a share of the rules' SKUs, or of Shanghai days


def bucket_of(now: datetime) -> int:
    return int(now.timestamp()) // STEP_SECONDS


# ---------------------------------------------------------------- views

@dataclass(frozen=True)
class RuleView:
    id: int
    sku_id: int
    title: str
    spec: str
    price_fen: int
    stock: int
    base_fen: int
    cost_fen: int
    floor_fen: int
    ceiling_fen: int
    min_margin_bp: int
    max_step_bp: int
    max_day_bp: int
    cfg: R.RuleConfig
    enabled: bool
    arm: str                      # "test", "control" or "" (no A/B test running)


@dataclass(frozen=True)
class ChangeView:
    id: int
    sku_id: int
    title: str
    rule_id: int
    actor: str
    reason: str
    before_fen: int
    after_fen: int
    at: datetime
    rolled_back_at: datetime | None


def cost_of(r: PriceRule, sku_cost: int | None) -> int:
    """The SKU's cost (the core's 成本价, edited on the product page or with the rule); the
    cost saved with the rule only for a SKU that has none."""
    return r.cost_fen if sku_cost is None else sku_cost


def _rails(r: PriceRule, sku_cost: int | None) -> R.Rails:
    return R.Rails(cost_of(r, sku_cost), r.min_margin_bp, r.ceiling_fen, r.max_step_bp, r.max_day_bp)


async def list_rules(uow: UnitOfWork, tenant: int) -> list[RuleView]:
    repo = PricingRepo(uow.session)
    rules = await repo.rules(tenant)
    test = await repo.running_test(tenant)
    skus = await repo.skus(tenant, [r.sku_id for r in rules])
    out = []
    for r in rules:
        title, spec, price, stock, cost = skus.get(r.sku_id, ("?", "", 0, 0, None))
        out.append(RuleView(r.id, r.sku_id, title, spec, price, stock, r.base_fen, cost_of(r, cost),
                            _rails(r, cost).floor_fen,
                            r.ceiling_fen, r.min_margin_bp, r.max_step_bp, r.max_day_bp,
                            R.RuleConfig.from_json(r.params), r.enabled,
                            "" if test is None or test.unit == "day" else R.arm_of(test.salt, r.sku_id, test.share_bp)))
    return out


async def list_changes(uow: UnitOfWork, tenant: int, *, limit: int = 50) -> list[ChangeView]:
    repo = PricingRepo(uow.session)
    rows = await repo.changes(tenant, limit=limit)
    skus = await repo.skus(tenant, list({c.sku_id for c in rows}))
    return [ChangeView(c.id, c.sku_id, skus.get(c.sku_id, ("?",))[0], c.rule_id, c.actor, c.reason, c.before_fen,
                       c.after_fen, c.at, c.rolled_back_at) for c in rows]


# ---------------------------------------------------------------- the merchant's rules

def _pct_bp(form: Mapping[str, object], field: str, default: int, hi: int = MAX_PCT) -> int:
    raw = str(form.get(field, "") or "").strip()
    return default if not raw else crules.parse_int(raw, field, lo=0, hi=hi) * 100


def _int(form: Mapping[str, object], field: str, default: int, lo: int, hi: int) -> int:
    raw = str(form.get(field, "") or "").strip()
    return default if not raw else crules.parse_int(raw, field, lo=lo, hi=hi)


def _on(form: Mapping[str, object], field: str) -> bool:
    return str(form.get(field, "") or "") in ("1", "on", "true")


def parse_rule(form: Mapping[str, object], price_fen: int,
               sku_cost: int | None = None) -> tuple[int, int, int, int, int, R.RuleConfig]:
    """(cost, min margin bp, ceiling, step bp, day bp, config) from the console's form
    (yuan and whole percents), or InvalidInputError naming the field. The cost left
    empty is the SKU's own (required when the SKU has none)."""
    cost_raw = str(form.get("cost", "") or "").strip()
    if cost_raw:
        cost = crules.parse_price(cost_raw, "cost")
    elif sku_cost is None:
        raise InvalidInputError("cost", "no_cost")
    else:
        cost = sku_cost
    margin = _pct_bp(form, "min_margin_pct", 1000, hi=500)
    ceiling_raw = str(form.get("ceiling", "") or "").strip()
    ceiling = crules.parse_price(ceiling_raw, "ceiling") if ceiling_raw else price_fen
    step = _pct_bp(form, "max_step_pct", 500, hi=50)
    day = _pct_bp(form, "max_day_pct", 2000)
    expires: date | None = None
    if _on(form, "expiry"):
        expires = crules.parse_date(str(form.get("expires_on", "") or ""), "expires_on")
        if expires is None:
            raise InvalidInputError("expires_on", "required")
    cfg = R.RuleConfig(
        stock=_on(form, "stock"), slow_days=_int(form, "slow_days", 30, 1, 365),
        clear_off_bp=_pct_bp(form, "clear_off_pct", 1500),
        expiry=_on(form, "expiry"), expires_on=expires, expiry_days=_int(form, "expiry_days", 3, 0, 60),
        expiry_off_bp=_pct_bp(form, "expiry_off_pct", 3000),
        evening=_on(form, "evening"), evening_hour=_int(form, "evening_hour", 19, 12, 23),
        evening_off_bp=_pct_bp(form, "evening_off_pct", 2000),
        demand=_on(form, "demand"), demand_hours=_int(form, "demand_hours", 6, 1, 72),
        demand_ratio_pct=_int(form, "demand_ratio_pct", 200, 110, 1000),
        demand_min_events=_int(form, "demand_min_events", 3, 1, 1000),
        demand_up_bp=_pct_bp(form, "demand_up_pct", 1000, hi=50),
    )
    if not cfg.kinds():
        raise InvalidInputError("kinds", "required")
    if R.Rails(cost, margin, ceiling, step, day).floor_fen > ceiling:
        raise InvalidInputError("ceiling", "below_floor")
    return cost, margin, ceiling, step, day, cfg


async def save_rule(uow: UnitOfWork, tenant: int, actor: str, sku_id: int, form: Mapping[str, object],
                    now: datetime) -> int:
    """Add the SKU's rule or replace it (the base price is the SKU's price when the rule is
    first saved; 「重设基准价」 is saving with reset_base). A cost typed in the rule is the
    SKU's cost from now on (written to the SKU, audited as its edit): one figure for the
    product page, every rule and readout."""
    repo = PricingRepo(uow.session)
    found = await repo.sku(tenant, sku_id)
    if found is None:
        raise NotFoundError("sku", sku_id)
    sku, _ = found
    sku_cost = sku.cost_fen
    cost, margin, ceiling, step, day, cfg = parse_rule(form, sku.price_fen, sku_cost)
    if cost != sku_cost:
        await repo.set_cost(tenant, sku_id, cost)
        uow.audit(tenant, actor, "sku.update", f"sku:{sku_id}", before={"cost_fen": sku_cost},
                  after={"cost_fen": cost})
    row = await repo.rule_of_sku(tenant, sku_id)
    before: dict[str, object] | None = None
    if row is None:
        if len(await repo.rules(tenant)) >= MAX_RULES:
            raise InvalidInputError("sku", "too_many")
        row = PriceRule(tenant_id=tenant, sku_id=sku_id, base_fen=sku.price_fen, created_at=now, enabled=True)
        uow.session.add(row)
    else:
        before = _snapshot(row)
        if _on(form, "reset_base"):
            row.base_fen = sku.price_fen
    row.cost_fen, row.min_margin_bp, row.ceiling_fen = cost, margin, ceiling
    row.max_step_bp, row.max_day_bp, row.params, row.updated_at = step, day, cfg.to_json(), now
    await uow.session.flush()
    uow.audit(tenant, actor, "intel.price_rule.save", f"sku:{sku_id}", before=before, after=_snapshot(row))
    return row.id


async def save_product_rules(uow: UnitOfWork, tenant: int, actor: str, product_id: int,
                             form: Mapping[str, object], now: datetime) -> list[int]:
    """The same rule on every on-shelf SKU of a product (each from its own price and cost;
    a cost or ceiling typed applies to all): one transaction, so one SKU's refusal (no cost,
    a floor over its ceiling…) saves none. The rules' ids."""
    skus = await PricingRepo(uow.session).product_skus(tenant, product_id)
    if not skus:
        raise InvalidInputError("product", "range")
    return [await save_rule(uow, tenant, actor, sku, form, now) for sku in skus]


def _snapshot(r: PriceRule) -> dict[str, object]:
    return {"rule": r.id, "cost_fen": r.cost_fen, "min_margin_bp": r.min_margin_bp, "ceiling_fen": r.ceiling_fen,
            "base_fen": r.base_fen, "max_step_bp": r.max_step_bp, "max_day_bp": r.max_day_bp,
            "params": dict(r.params), "enabled": r.enabled}


async def set_rule_enabled(uow: UnitOfWork, tenant: int, actor: str, rule_id: int, enabled: bool,
                           now: datetime) -> None:
    repo = PricingRepo(uow.session)
    row = await repo.rule(tenant, rule_id)
    if row is None:
        raise NotFoundError("price_rule", rule_id)
    await repo.set_enabled(tenant, rule_id, enabled, now)
    uow.audit(tenant, actor, "intel.price_rule.enable" if enabled else "intel.price_rule.pause",
              f"sku:{row.sku_id}", before={"enabled": row.enabled}, after={"enabled": enabled})


# ---------------------------------------------------------------- the job

@dataclass(frozen=True)
class Applied:
    sku_id: int
    before_fen: int
    after_fen: int
    reason: str


async def signals(repo: PricingRepo, tenant: int, sku_id: int, stock: int, cfg: R.RuleConfig,
                  now: datetime, product_id: int = 0) -> R.Signals:
    """Demand events: units ordered and cart adds of the SKU, views of its product (the
    module's counters of the core's activity: views.py)."""
    week = now - timedelta(days=7)
    recent = now - timedelta(hours=cfg.demand_hours)
    sold = await repo.units_since(tenant, sku_id, week)
    events_7d = recent_events = 0
    if cfg.demand:
        events_7d = sold + await repo.carts_since(tenant, sku_id, week) + await repo.views_since(tenant, product_id, week)
        recent_events = (await repo.units_since(tenant, sku_id, recent) + await repo.carts_since(tenant, sku_id, recent)
                         + await repo.views_since(tenant, product_id, recent))
    return R.Signals(now, stock, sold, recent_events, events_7d)


def arm_now(test: PriceTest | None, sku_id: int, now: datetime) -> str:
    """The A/B arm a SKU is in now ("" without a running test)."""
    if test is None:
        return ""
    return R.arm_of(test.salt, R.block_of(now) if test.unit == "day" else sku_id, test.share_bp)


async def apply_rule(uow: UnitOfWork, tenant: int, rule: PriceRule, now: datetime,
                     test: PriceTest | None = None, holds: Sequence[PriceHold] = ()) -> Applied | None:
    """One step of one SKU's rule: at most one change per bucket, under the guard rails.
    No raise while the SKU is in an unpaid order or a running promotion: a flash price or
    a group buy (the core's), or whatever the registry's price holds say (seckill
    sessions, bargain campaigns…: `reg.add_price_hold`)."""
    repo = PricingRepo(uow.session)
    fresh = await repo.rule(tenant, rule.id)      # paused, edited or rolled back since the job listed it
    if fresh is None:
        return None
    rule = fresh
    arm = arm_now(test, rule.sku_id, now)
    if not rule.enabled or (arm == "control" and test is not None and test.unit == "sku"):
        return None
    bucket = bucket_of(now)
    if await repo.changed_in(tenant, rule.sku_id, bucket):
        return None
    found = await repo.sku(tenant, rule.sku_id)
    if found is None:
        return None
    sku_row, product_row = found
    sku_id, current, stock = sku_row.id, sku_row.price_fen, sku_row.stock   # plain values: the UPDATE refreshes the row
    rails = _rails(rule, sku_row.cost_fen)
    cfg = R.RuleConfig.from_json(rule.params)
    proposal = R.propose(rule.base_fen, cfg, await signals(repo, tenant, sku_id, stock, cfg, now, product_row.id))
    day_open = await repo.day_open(tenant, sku_id, R.day_start(now))
    target = proposal.target_fen
    if arm == "control":            # a control time block: back to the base price
        target, proposal = rule.base_fen, R.Proposal(rule.base_fen, ("control",))
    no_raise = False
    if target > current or current < rails.floor_fen:
        no_raise = await promotion_running(uow, repo, tenant, sku_id, now, holds)
    new = R.guard(target, current, current if day_open is None else day_open, rails,
                  no_raise=no_raise)
    if new is None or not await repo.set_price(tenant, sku_id, current, new):
        return None
    reason = "+".join(proposal.reasons) or "base"
    if current < rails.floor_fen:
        reason = "floor"
    elif current > rule.ceiling_fen:
        reason = "ceiling"
    repo.add_change(PriceChange(tenant_id=tenant, sku_id=sku_id, rule_id=rule.id, bucket=bucket, actor=f"rule:{rule.id}",
                                reason=reason, before_fen=current, after_fen=new, at=now))
    uow.audit(tenant, f"rule:{rule.id}", "intel.price.auto", f"sku:{sku_id}",
              before={"price_fen": current}, after={"price_fen": new, "reason": reason, "bucket": bucket})
    return Applied(sku_id, current, new, reason)


async def promotion_running(uow: UnitOfWork, repo: PricingRepo, tenant: int, sku_id: int, now: datetime,
                            holds: Sequence[PriceHold]) -> bool:
    if (await repo.in_unpaid_order(tenant, sku_id) or await repo.in_group_buy(tenant, sku_id, now)
            or await active_flash_prices(uow, tenant, [sku_id], now)):
        return True
    for hold in holds:
        if await hold(uow, tenant, sku_id, now):
            return True
    return False


async def move_costs(uow: UnitOfWork, tenant: int) -> int:
    """Rules saved before costs moved to SKUs (intel_0007): each gives its cost to its SKU
    when the SKU has none, once, audited as the SKU's edit. How many rules were marked."""
    repo = PricingRepo(uow.session)
    pending = await repo.costs_to_move(tenant)
    for rule_id, sku_id, cost in pending:
        if await repo.move_cost(tenant, rule_id, sku_id, cost):
            uow.audit(tenant, f"rule:{rule_id}", "sku.update", f"sku:{sku_id}", before={"cost_fen": None},
                      after={"cost_fen": cost})
    return len(pending)


async def run_all(uows: UowFactory, now: datetime, holds: Sequence[PriceHold] = ()) -> list[Applied]:
    """The job: every enabled rule of every tenant, each SKU in its own transaction (a
    worker that lost the race for a bucket rolls back that SKU only). Idempotent."""
    async with uows() as uow:
        tenants = await PricingRepo(uow.session).tenants_with_rules()
    done: list[Applied] = []
    for tenant in tenants:
        async with uows() as uow:
            if await move_costs(uow, tenant):
                await uow.commit()
        async with uows() as uow:
            repo = PricingRepo(uow.session)
            rules, test = await repo.rules(tenant, enabled_only=True), await repo.running_test(tenant)
        for rule in rules:
            async with uows() as uow:
                try:
                    applied = await apply_rule(uow, tenant, rule, now, test, holds)
                    await uow.commit()
                except IntegrityError:      # another worker wrote this SKU's bucket first
                    log.info("intel.price.race", extra={"tenant": tenant, "sku": rule.sku_id})
                    continue
            if applied is not None:
                log.info("intel.price.auto", extra={"tenant": tenant, "sku": applied.sku_id,
                                                    "before": applied.before_fen, "after": applied.after_fen})
                done.append(applied)
    return done


# ---------------------------------------------------------------- rollback

async def rollback(uow: UnitOfWork, tenant: int, actor: str, change_id: int, now: datetime,
                   holds: Sequence[PriceHold] = ()) -> Applied:
    """Put the price back to the change's `before` (only while it is still the change's
    `after`: a later change or a merchant's edit must be undone first), pause the rule so
    the job doesn't redo it, audit both. Undoing a cut raises the price: refused, like the
    job's raises, while the SKU is in an unpaid order or a running promotion."""
    repo = PricingRepo(uow.session)
    c = await repo.change(tenant, change_id)
    if c is None or c.bucket < 0:
        raise NotFoundError("price_change", change_id)
    if c.rolled_back_at is not None:
        raise InvalidInputError("change", "rolled_back")
    if c.before_fen > c.after_fen and await promotion_running(uow, repo, tenant, c.sku_id, now, holds):
        raise InvalidInputError("change", "in_promotion")
    if not await repo.set_price(tenant, c.sku_id, c.after_fen, c.before_fen):
        raise InvalidInputError("change", "price_moved")
    await repo.mark_rolled_back(tenant, change_id, now)
    await repo.set_enabled(tenant, c.rule_id, False, now)
    repo.add_change(PriceChange(tenant_id=tenant, sku_id=c.sku_id, rule_id=c.rule_id, bucket=-change_id, actor=actor,
                                reason=f"rollback:{change_id}", before_fen=c.after_fen, after_fen=c.before_fen, at=now))
    uow.audit(tenant, actor, "intel.price.rollback", f"sku:{c.sku_id}",
              before={"price_fen": c.after_fen, "change": change_id},
              after={"price_fen": c.before_fen, "rule_paused": c.rule_id})
    return Applied(c.sku_id, c.after_fen, c.before_fen, "rollback")


# ---------------------------------------------------------------- history, preview, A/B

@dataclass(frozen=True)
class History:
    """Per SKU, the last HISTORY_DAYS as hours (oldest first): units of order lines placed
    (not cancelled), cart adds, views of its product, and the list price at each hour's end, from the price's
    history: the merchant's edits (the core's `sku.update` audit entries) and the rules'
    changes (before the first known change: its `before`; none: today's price). Order
    lines' unit prices are not used: a member's B2B price is not the list price."""

    hours: Mapping[int, list[R.HourObs]]
    daily: list[tuple[int, int, float]]       # (sku, price fen, units) per SKU-day, for the elasticity


async def history(uow: UnitOfWork, tenant: int, now: datetime, sku_prices: Mapping[int, int],
                  series_for: Collection[int] = (), days: int = HISTORY_DAYS) -> History:
    """Hourly series for the SKUs in `series_for`; SKU-days (price at midday, units) for
    every SKU that sold or is in `sku_prices`, for the elasticity."""
    repo = PricingRepo(uow.session)
    since = now - timedelta(days=days)
    units: dict[int, dict[datetime, int]] = defaultdict(lambda: defaultdict(int))
    points: dict[int, list[tuple[datetime, int, int]]] = defaultdict(list)
    for sku, at, _fen, qty, status, _member in await repo.lines_since(tenant, since):
        if status != CANCELLED:
            units[sku][at.replace(minute=0, second=0, microsecond=0)] += qty
    for sku, at, before, after in await repo.merchant_prices_since(tenant, since):
        points[sku].append((at, before, after))
    carts: dict[int, dict[datetime, int]] = defaultdict(lambda: defaultdict(int))
    for sku, adds in (await repo.carts_by_sku(tenant, since)).items():
        if sku in series_for:
            for at, _m in adds:
                carts[sku][at.replace(minute=0, second=0, microsecond=0)] += 1
    for c in await repo.changes_since(tenant, since):
        points[c.sku_id].append((c.at, c.before_fen, c.after_fen))
    hours = R.hours_back(now, days * 24)

    def walk(sku: int, at: Sequence[datetime]) -> list[int]:
        """The SKU's list price at the end of each moment's hour."""
        pts = sorted(points.get(sku, []))
        price, i, out = pts[0][1] if pts else sku_prices.get(sku, 0), 0, []
        for h in at:
            end = h + timedelta(hours=1)
            while i < len(pts) and pts[i][0] < end:
                price, i = pts[i][2], i + 1
            out.append(price)
        return out

    product_of = await repo.products_of(tenant, series_for)
    views = await repo.views_by_hour(tenant, set(product_of.values()), since)
    series = {sku: [R.HourObs(h, fen, units[sku].get(h, 0), carts[sku].get(h, 0),
                              views.get((product_of.get(sku, 0), h), 0))
                    for h, fen in zip(hours, walk(sku, hours))] for sku in series_for}
    middays = hours[12::24]
    daily: list[tuple[int, int, float]] = []
    for sku in set(sku_prices) | set(units):
        per_day = [0] * days
        for h, q in units[sku].items():
            d = (h - hours[0]) // timedelta(days=1)
            if 0 <= d < days:
                per_day[d] += q
        daily.extend((sku, fen, float(q)) for fen, q in zip(walk(sku, middays), per_day) if fen > 0)
    return History(series, daily)


@dataclass(frozen=True)
class PreviewView:
    rule: RuleView
    preview: R.Preview
    elasticity: R.Elasticity


async def preview(uow: UnitOfWork, tenant: int, rule_id: int, now: datetime) -> PreviewView:
    repo = PricingRepo(uow.session)
    rule = await repo.rule(tenant, rule_id)
    if rule is None:
        raise NotFoundError("price_rule", rule_id)
    rows = await list_rules(uow, tenant)
    view = next(v for v in rows if v.id == rule_id)
    h = await history(uow, tenant, now, {v.sku_id: v.price_fen for v in rows}, series_for={rule.sku_id})
    e = R.estimate_elasticity(h.daily)
    series = h.hours.get(rule.sku_id) or [R.HourObs(x, view.price_fen, 0) for x in R.hours_back(now, HISTORY_DAYS * 24)]
    return PreviewView(view, R.simulate(series, rule.base_fen, view.cfg, _rails(rule, view.cost_fen), view.stock, e.value,
                                        steps_per_hour=STEPS_PER_HOUR), e)


async def start_test(uow: UnitOfWork, tenant: int, actor: str, name_raw: object, share_raw: object,
                     now: datetime, unit_raw: object = "sku") -> int:
    name = crules.text(name_raw, "name", max_len=40, min_len=1)
    unit = str(unit_raw or "sku")
    if unit not in UNITS:
        raise InvalidInputError("unit", "range")
    share = crules.parse_int(share_raw, "share_pct", lo=1, hi=99) * 100
    repo = PricingRepo(uow.session)
    if await repo.running_test(tenant) is not None:
        raise InvalidInputError("name", "test_running")
    row = PriceTest(tenant_id=tenant, name=name, share_bp=share, unit=unit, salt=secrets.token_hex(4), started_at=now)
    uow.session.add(row)
    await uow.session.flush()
    uow.audit(tenant, actor, "intel.price_test.start", f"price_test:{row.id}", after={"name": name, "share_bp": share, "unit": unit})
    return row.id


async def stop_test(uow: UnitOfWork, tenant: int, actor: str, test_id: int, now: datetime) -> None:
    repo = PricingRepo(uow.session)
    if await repo.test(tenant, test_id) is None:
        raise NotFoundError("price_test", test_id)
    if await repo.end_test(tenant, test_id, now):
        uow.audit(tenant, actor, "intel.price_test.stop", f"price_test:{test_id}", after={"ended_at": now.isoformat()})


@dataclass(frozen=True)
class TestView:
    id: int
    name: str
    share_bp: int
    unit: str
    started_at: datetime
    ended_at: datetime | None
    readout: R.Readout


async def test_readout(uow: UnitOfWork, tenant: int, test: PriceTest, now: datetime) -> TestView:
    """Each arm over the test's time (its SKUs, or its days for time blocks): visitors
    (members who put a rule SKU in the cart or ordered it; views are kept as counters per
    member and per hour, not per visit, so they do not name visitors),
    buyers (a paid order), revenue and margin (price − the SKU's cost) of the paid lines.
    A SKU split also compares each SKU's paid revenue with its own over the same length of
    time before the test (R.SkuLift: the arms hold different products, so revenue per
    visitor carries the mix)."""
    repo = PricingRepo(uow.session)
    end = test.ended_at or now
    rules = {r.sku_id: r for r in await repo.rules(tenant)}
    costs = {sku: cost_of(rules[sku], found[4]) for sku, found in (await repo.skus(tenant, list(rules))).items()}

    def arm_at(sku: int, at: datetime) -> str:
        return R.arm_of(test.salt, R.block_of(at) if test.unit == "day" else sku, test.share_bp)

    visitors: dict[str, set[int]] = {"test": set(), "control": set()}
    paid: dict[str, dict[int, int]] = {"test": defaultdict(int), "control": defaultdict(int)}
    margin = {"test": 0, "control": 0}
    for sku, adds in (await repo.carts_by_sku(tenant, test.started_at)).items():
        if sku in rules:
            for at, m in adds:
                if at < end:
                    visitors[arm_at(sku, at)].add(m)
    split_by_sku = test.unit != "day"
    since = test.started_at - (end - test.started_at) if split_by_sku else test.started_at
    during: dict[int, int] = defaultdict(int)
    before: dict[int, int] = defaultdict(int)
    for sku, at, fen, qty, status, member in await repo.lines_since(tenant, since):
        if sku not in rules or at >= end:
            continue
        if at < test.started_at:          # the same length of time before the test (a SKU split only)
            if status in PAID:
                before[sku] += fen * qty
            continue
        if status in PAID:
            during[sku] += fen * qty
        a = arm_at(sku, at)
        visitors[a].add(member)
        if status in PAID:
            paid[a][member] += fen * qty
            margin[a] += (fen - costs.get(sku, rules[sku].cost_fen)) * qty
    stats = {a: R.ArmStats(len(visitors[a]), len(paid[a]), sum(paid[a].values()), margin[a],
                           tuple(paid[a].get(m, 0) for m in sorted(visitors[a]))) for a in ("test", "control")}
    pairs = None
    if split_by_sku:
        arms: dict[str, list[tuple[int, int]]] = {"test": [], "control": []}
        for sku in sorted(rules):
            arms[arm_at(sku, end)].append((during[sku], before[sku]))
        pairs = (arms["test"], arms["control"])
    return TestView(test.id, test.name, test.share_bp, test.unit, test.started_at, test.ended_at,
                    R.readout(stats["test"], stats["control"], pairs))


async def tests(uow: UnitOfWork, tenant: int, now: datetime) -> list[TestView]:
    return [await test_readout(uow, tenant, t, now) for t in await PricingRepo(uow.session).tests(tenant)]
