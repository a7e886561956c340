"""Dynamic pricing, the pure part (no I/O): what price a rule wants, the guard rails that
bound every automatic change, the price elasticity estimated from history, the preview
that replays a rule over past hours, and the A/B readout's statistics.

Money is integer fen; a rule's effect is in basis points (bp, 1/10,000) of the SKU's
base price (the merchant's list price when the rule was made). Estimates (elasticity,
projected units) are floats; every price they lead to is rounded to whole fen.

Guard rails, always, in this order (`guard`):
- floor = ⌈cost × (1 + minimum margin)⌉ and the ceiling bound every price a rule sets;
  a price the merchant left outside [floor, ceiling] is brought straight to the nearer
  bound (the band wins over the step caps);
- inside the band a step moves at most `max_step_bp` of the current price, and the price
  stays within `max_day_bp` of the day's opening price (Asia/Shanghai day);
- `no_raise` (the SKU is in an unpaid order or a running promotion): never up;
- no change is returned as None (the job writes nothing).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

BP = 10_000
SHANGHAI = ZoneInfo("Asia/Shanghai")
MAX_OFF_BP = 9_000                    # a rule never asks for more than 90 % off its base
DEFAULT_ELASTICITY = -1.5             # when history has no price variation to learn from
ELASTICITY_RANGE = (-5.0, -0.1)       # estimates are clipped into this range


# ---------------------------------------------------------------- rule and signals

@dataclass(frozen=True)
class RuleConfig:
    """Which signals a SKU's rule follows and how strongly (all optional)."""

    stock: bool = False           # clear slow stock: cover (stock ÷ daily sales of 7 days) above slow_days
    slow_days: int = 30
    clear_off_bp: int = 1500
    expiry: bool = False          # perishables: a discount ramping up over the last expiry_days
    expires_on: date | None = None
    expiry_days: int = 3
    expiry_off_bp: int = 3000
    evening: bool = False         # bakery/fresh: a discount from evening_hour to midnight (Shanghai)
    evening_hour: int = 19
    evening_off_bp: int = 2000
    demand: bool = False          # demand: recent views + add-to-cart + order events vs the 7-day hourly rate
    demand_hours: int = 6
    demand_ratio_pct: int = 200
    demand_min_events: int = 3
    demand_up_bp: int = 1000

    def to_json(self) -> dict[str, object]:
        d = asdict(self)
        d["expires_on"] = self.expires_on.isoformat() if self.expires_on else None
        return d

    @classmethod
    def from_json(cls, raw: Mapping[str, object]) -> RuleConfig:
        known = {f.name: f for f in fields(cls)}
        values: dict[str, object] = {}
        for k, v in raw.items():
            if k not in known:
                continue
            if k == "expires_on":
                values[k] = date.fromisoformat(str(v)) if v else None
            elif isinstance(getattr(cls(), k), bool):
                values[k] = bool(v)
            else:
                values[k] = int(str(v))
        return cls(**values)  # type: ignore[arg-type]

    def kinds(self) -> tuple[str, ...]:
        return tuple(k for k in ("stock", "expiry", "evening", "demand") if getattr(self, k))


@dataclass(frozen=True)
class Rails:
    cost_fen: int
    min_margin_bp: int
    ceiling_fen: int
    max_step_bp: int
    max_day_bp: int

    @property
    def floor_fen(self) -> int:
        return -(-self.cost_fen * (BP + self.min_margin_bp) // BP)   # ceiling division: never a fen under


@dataclass(frozen=True)
class Signals:
    """What the job (or the preview) saw of one SKU at `now`."""

    now: datetime                 # aware; rules read the Shanghai wall clock
    stock: int
    sold_7d: int                  # units ordered over the last 7 days
    recent_events: int            # product views + add-to-cart + units ordered over the rule's demand_hours
    events_7d: int                # the same events over the last 7 days


@dataclass(frozen=True)
class Proposal:
    target_fen: int
    reasons: tuple[str, ...]


def propose(base_fen: int, cfg: RuleConfig, s: Signals) -> Proposal:
    """The price the rule wants (before guard rails): base × (1 − discounts + demand rise)."""
    off, up, why = 0, 0, []
    local = s.now.astimezone(SHANGHAI)
    if cfg.stock and s.stock > 0:
        per_day = s.sold_7d / 7
        if per_day == 0 or s.stock / per_day > cfg.slow_days:
            off += cfg.clear_off_bp
            why.append("stock")
    if cfg.expiry and cfg.expires_on is not None:
        left = (cfg.expires_on - local.date()).days
        if left <= cfg.expiry_days:
            span = max(cfg.expiry_days, 0) + 1
            off += cfg.expiry_off_bp * (span - max(left, 0)) // span
            why.append("expiry")
    if cfg.evening and local.hour >= cfg.evening_hour:
        off += cfg.evening_off_bp
        why.append("evening")
    if cfg.demand and s.recent_events >= cfg.demand_min_events:
        expected = s.events_7d / (7 * 24) * cfg.demand_hours
        if s.recent_events * 100 >= cfg.demand_ratio_pct * expected:
            up += cfg.demand_up_bp
            why.append("demand")
    off = min(off, MAX_OFF_BP)
    return Proposal(max(base_fen * (BP - off + up) // BP, 0), tuple(why))


def day_start(now: datetime) -> datetime:
    """The start of `now`'s Shanghai day, as an aware datetime."""
    local = now.astimezone(SHANGHAI)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def guard(target_fen: int, current_fen: int, day_open_fen: int, r: Rails, *, no_raise: bool = False) -> int | None:
    """The price to set now, or None for no change (see the module's docstring)."""
    lo, hi = r.floor_fen, r.ceiling_fen
    if lo > hi or lo <= 0:
        return None
    if current_fen < lo or current_fen > hi:
        new = min(max(current_fen, lo), hi)
    else:
        step = current_fen * r.max_step_bp // BP
        day = day_open_fen * r.max_day_bp // BP
        low = max(lo, current_fen - step, day_open_fen - day)
        high = min(hi, current_fen + step, day_open_fen + day)
        if low > high:
            return None
        new = min(max(target_fen, low), high)
    if no_raise and new > current_fen:
        return None
    return None if new == current_fen else new


# ---------------------------------------------------------------- elasticity

@dataclass(frozen=True)
class Elasticity:
    value: float
    observations: int             # SKU-days used
    skus: int                     # SKUs with at least two prices
    estimated: bool               # False: DEFAULT_ELASTICITY (no price variation in history)


def estimate_elasticity(obs: Sequence[tuple[int, int, float]], *, method: str = "poisson") -> Elasticity:
    """The constant-elasticity (log-log) demand model ln E[units] = a_sku + e · ln(price),
    one intercept per SKU, over (sku, price fen, units) days of SKUs seen at two prices or
    more. Clipped to ELASTICITY_RANGE; DEFAULT_ELASTICITY without price variation.

    method "poisson" (the default): Poisson pseudo-maximum likelihood with the SKU
    intercepts concentrated out (Newton on e alone; the score is monotone in e). It keeps
    the days without a sale. method "ols": least squares of ln(units + 0.5) on ln(price)
    after de-meaning per SKU: textbook, but biased toward 0 on sparse daily counts
    (bench/dynamic_pricing.py prints both)."""
    by: dict[int, list[tuple[float, float]]] = {}
    for sku, fen, units in obs:
        if fen > 0 and units >= 0:
            by.setdefault(sku, []).append((math.log(fen), float(units)))
    groups: list[list[tuple[float, float]]] = []
    for rows in by.values():
        if len({round(x, 9) for x, _ in rows}) < 2:
            continue
        mx = sum(x for x, _ in rows) / len(rows)
        groups.append([(x - mx, y) for x, y in rows])
    n = sum(len(g) for g in groups)
    lo, hi = ELASTICITY_RANGE
    if method == "ols":
        sxy = sxx = 0.0
        for g in groups:
            ys = [math.log(y + 0.5) for _, y in g]
            my = sum(ys) / len(ys)
            sxy += sum(x * (y - my) for (x, _), y in zip(g, ys))
            sxx += sum(x * x for x, _ in g)
        if sxx <= 1e-12:
            return Elasticity(DEFAULT_ELASTICITY, n, len(groups), False)
        return Elasticity(min(max(sxy / sxx, lo), hi), n, len(groups), True)
    groups = [g for g in groups if sum(y for _, y in g) > 0]   # a SKU that never sold says nothing here
    if not groups:
        return Elasticity(DEFAULT_ELASTICITY, n, 0, False)
    e = DEFAULT_ELASTICITY
    for _ in range(50):
        score = slope = 0.0
        for g in groups:
            total = sum(y for _, y in g)
            ws = [math.exp(e * x) for x, _ in g]
            sw = sum(ws)
            mean_x = sum(w * x for w, (x, _) in zip(ws, g)) / sw
            var_x = sum(w * (x - mean_x) ** 2 for w, (x, _) in zip(ws, g)) / sw
            score += sum(y * x for x, y in g) - total * mean_x
            slope -= total * var_x
        if slope >= -1e-12:
            break
        step = score / slope
        e = min(max(e - step, -10.0), 5.0)      # keep Newton in a sane range; clipped below
        if abs(step) < 1e-7:
            break
    return Elasticity(min(max(e, lo), hi), n, len(groups), True)


# ---------------------------------------------------------------- preview

@dataclass(frozen=True)
class HourObs:
    """One past hour of one SKU: the list price it sold at, units ordered, cart adds, views
    of its product."""

    at: datetime
    price_fen: int
    units: int
    carts: int = 0
    views: int = 0


@dataclass(frozen=True)
class Preview:
    hours: int
    changes: int
    units: float
    revenue_fen: int
    margin_fen: int
    projected_units: float
    projected_revenue_fen: int
    projected_margin_fen: int
    min_price_fen: int
    max_price_fen: int

    @property
    def revenue_delta_pct(self) -> float:
        return 100.0 * (self.projected_revenue_fen - self.revenue_fen) / self.revenue_fen if self.revenue_fen else 0.0

    @property
    def margin_delta_pct(self) -> float:
        return 100.0 * (self.projected_margin_fen - self.margin_fen) / abs(self.margin_fen) if self.margin_fen else 0.0


def simulate(history: Sequence[HourObs], base_fen: int, cfg: RuleConfig, rails: Rails, stock_now: int,
             elasticity: float, steps_per_hour: int = 1) -> Preview:
    """Replay the rule hour by hour over `history` (oldest first, one row per hour, hours
    with no sale included): the signals are the ones history shows (stock rebuilt backwards
    from `stock_now`), the rule takes `steps_per_hour` steps an hour under the guard rails
    (the job's period), and each hour's units scale by (the hour's mean price ÷ price
    then)^elasticity."""
    units_after = sum(h.units for h in history)
    price = history[0].price_fen if history else base_fen
    day, day_open = None, price
    window: list[HourObs] = []
    changes = 0
    units = proj_units = 0.0
    rev = margin = 0
    proj_rev = proj_margin = 0.0
    lo_p = hi_p = price
    for h in history:
        units_after -= h.units
        stock = stock_now + units_after + h.units
        week = window[-168:]
        recent = window[-cfg.demand_hours:] if cfg.demand_hours > 0 else []
        sig = Signals(h.at, stock, sum(w.units for w in week), sum(w.units + w.carts + w.views for w in recent),
                      sum(w.units + w.carts + w.views for w in week))
        d = day_start(h.at)
        if d != day:
            day, day_open = d, price
        target = propose(base_fen, cfg, sig).target_fen
        seen = []
        for _ in range(max(steps_per_hour, 1)):
            new = guard(target, price, day_open, rails)
            if new is not None:
                price, changes = new, changes + 1
            seen.append(price)
        mean = sum(seen) / len(seen)
        lo_p, hi_p = min(lo_p, *seen), max(hi_p, *seen)
        q = h.units * (mean / h.price_fen) ** elasticity if h.price_fen > 0 else 0.0
        units += h.units
        rev += h.units * h.price_fen
        margin += h.units * (h.price_fen - rails.cost_fen)
        proj_units += q
        proj_rev += q * mean
        proj_margin += q * (mean - rails.cost_fen)
        window.append(h)
    return Preview(len(history), changes, units, rev, margin, proj_units, round(proj_rev), round(proj_margin), lo_p, hi_p)


# ---------------------------------------------------------------- A/B readout

def arm_of(salt: str, key: int, share_bp: int) -> str:
    """"test" (the rule runs) or "control" (it doesn't), stable per test and key (a SKU id,
    or a Shanghai date's ordinal for time blocks)."""
    h = 2166136261
    for ch in f"{salt}:{key}".encode():
        h = ((h ^ ch) * 16777619) & 0xFFFFFFFF            # FNV-1a: same on every worker and run
    return "test" if h % BP < share_bp else "control"


@dataclass(frozen=True)
class ArmStats:
    visitors: int                 # distinct members who put one of the arm's SKUs in the cart or ordered it
    buyers: int                   # those of them with a paid order for it
    revenue_fen: int
    margin_fen: int
    per_visitor_fen: tuple[int, ...] = field(default=())   # each visitor's paid revenue (0 for non-buyers)

    @property
    def conversion(self) -> float:
        return self.buyers / self.visitors if self.visitors else 0.0

    @property
    def revenue_per_visitor_fen(self) -> float:
        return self.revenue_fen / self.visitors if self.visitors else 0.0


@dataclass(frozen=True)
class Readout:
    test: ArmStats
    control: ArmStats
    z: float                      # two-proportion z-test on conversion (test − control)
    p_conversion: float           # two-sided
    t: float                      # Welch's t on revenue per visitor
    df: float
    p_revenue: float              # two-sided, normal approximation of t (fine past ~30 visitors an arm)
    sku: SkuLift | None = None    # a SKU split: each SKU against itself before the test (the figure to read)


@dataclass(frozen=True)
class SkuLift:
    """A SKU split's revenue test that the SKU mix can't fool: each SKU's paid revenue during
    the test against its own over the same length of time just before, as a log ratio
    ln((during + m) / (before + m)) (m: the median SKU's revenue before, so a SKU that sold
    nothing counts without dominating), compared between the arms' SKUs by Welch's t with
    Student's p (few SKUs: the normal approximation would overstate significance). In an
    A/A split the arms' ratios share one distribution whatever the products are."""

    skus_test: int
    skus_control: int
    lift_test: float              # geometric-mean change of an arm's SKU revenue, e.g. 0.05 = +5 %
    lift_control: float
    t: float
    df: float
    p: float


def block_of(at: datetime) -> int:
    """The time block of a moment: its Shanghai date's ordinal."""
    return at.astimezone(SHANGHAI).date().toordinal()


def _two_sided(z: float) -> float:
    return math.erfc(abs(z) / math.sqrt(2))


def two_proportion_z(x1: int, n1: int, x2: int, n2: int) -> tuple[float, float]:
    if n1 == 0 or n2 == 0:
        return 0.0, 1.0
    p = (x1 + x2) / (n1 + n2)
    se = math.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))
    if se == 0:
        return 0.0, 1.0
    z = (x1 / n1 - x2 / n2) / se
    return z, _two_sided(z)


def welch_t(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float]:
    """(t, Welch–Satterthwaite df, two-sided p by the normal approximation)."""
    if len(a) < 2 or len(b) < 2:
        return 0.0, 0.0, 1.0
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    va = sum((x - ma) ** 2 for x in a) / (len(a) - 1) / len(a)
    vb = sum((x - mb) ** 2 for x in b) / (len(b) - 1) / len(b)
    if va + vb == 0:
        return 0.0, 0.0, 1.0
    t = (ma - mb) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / ((va ** 2 / (len(a) - 1) if va else 0) + (vb ** 2 / (len(b) - 1) if vb else 0) or 1e-300)
    return t, df, _two_sided(t)


def student_two_sided(t: float, df: float) -> float:
    """Two-sided p of Student's t with `df` degrees of freedom: I_{df/(df+t²)}(df/2, 1/2)."""
    if df <= 0:
        return 1.0
    return _beta_reg(df / 2, 0.5, df / (df + t * t))


def _beta_reg(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b) (Lentz's continued fraction)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x > (a + 1) / (a + b + 2):
        return 1.0 - _beta_reg(b, a, 1.0 - x)
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    f = d
    for m in range(1, 300):
        for num in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                    -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            f *= c * d
        if abs(c * d - 1.0) < 1e-12:
            break
    return front * f / a


def sku_lift(test: Sequence[tuple[int, int]], control: Sequence[tuple[int, int]]) -> SkuLift:
    """SkuLift from each arm's SKUs' (revenue during, revenue before) in fen."""
    before = sorted(b for _, b in (*test, *control))
    m = float(max(before[len(before) // 2], 100)) if before else 100.0

    def ratios(pairs: Sequence[tuple[int, int]]) -> list[float]:
        return [math.log((d + m) / (b + m)) for d, b in pairs]

    lt, lc = ratios(test), ratios(control)
    t, df, _ = welch_t(lt, lc)

    def lift(xs: list[float]) -> float:
        return math.exp(sum(xs) / len(xs)) - 1 if xs else 0.0

    return SkuLift(len(lt), len(lc), lift(lt), lift(lc), t, df, student_two_sided(t, df) if df else 1.0)


def readout(test: ArmStats, control: ArmStats,
            sku_pairs: tuple[Sequence[tuple[int, int]], Sequence[tuple[int, int]]] | None = None) -> Readout:
    """The arms' figures and significance; `sku_pairs` (a SKU split: each arm's SKUs'
    revenue during and before the test) adds the SKU-against-itself test."""
    z, pz = two_proportion_z(test.buyers, test.visitors, control.buyers, control.visitors)
    t, df, pt = welch_t(test.per_visitor_fen, control.per_visitor_fen)
    return Readout(test, control, z, pz, t, df, pt, None if sku_pairs is None else sku_lift(*sku_pairs))


def hours_back(now: datetime, n: int) -> list[datetime]:
    """The starts of the last `n` whole hours before `now`, oldest first."""
    top = now.replace(minute=0, second=0, microsecond=0)
    return [top - timedelta(hours=n - i) for i in range(n)]

