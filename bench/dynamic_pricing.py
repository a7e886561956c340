#!/usr/bin/env python3
"""Dynamic pricing offline: 30 days of generated sales history, the module's elasticity
estimate against the true one, each rule's preview (projected revenue and margin) against
no rule (the baseline) and against the truth, and an A/B test's readout.

    .venv/bin/python bench/dynamic_pricing.py
    .venv/bin/python bench/dynamic_pricing.py --skus 400 --seed 7

It runs the same pure functions the console calls after reading the database
(social_mall_intelligence.rules_pricing: estimate_elasticity, simulate, readout, arm_of).

How the history is generated (deterministic for a seed), with a real shop's skew:
- --skus SKUs in three kinds: bakery (25 %, cost 45 % of price, true elasticity around
  −2.2), fresh (25 %, cost 60 %, around −1.8), fashion (50 %, cost 40 %, around −1.2);
  each SKU's true elasticity = its kind's × U(0.8, 1.2);
- popularity Zipf(1.1) over SKUs (a few sell most, a long tail barely sells);
- hour of day (Asia/Shanghai): a lunch peak (11–13) and an evening peak (19–21), nights
  near zero; weekends ×1.25;
- the merchant's own price moves (so elasticity can be learned): on 25 % of days a SKU
  sells at 10–30 % off all day; units per hour ~ Poisson(base rate × hour × day ×
  (price ÷ list)^elasticity).
Preview error: the preview's projected revenue vs the "truth" (the same replay with each
SKU's true elasticity instead of the estimated pooled one).
A/B: 14 more days; the rule runs on arm "test" (arm_of, 50 %: of the SKUs, or of the
Shanghai days, where control days sell at the base price); visitors per SKU-hour ~
Poisson, each buys with probability base × (price ÷ list)^elasticity; readout as in
the console (two-proportion z-test on conversion, Welch t on revenue per visitor). The
A/A runs (no rule in either arm) show what each design reads when nothing differs.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402,F401  (puts the repository root on sys.path)

from social_mall_intelligence.rules_pricing import (  # noqa: E402
    ArmStats,
    HourObs,
    Rails,
    Readout,
    RuleConfig,
    Signals,
    arm_of,
    block_of,
    day_start,
    estimate_elasticity,
    guard,
    propose,
    readout,
    simulate,
)

UTC = timezone.utc
KINDS = {  # share, cost ratio, elasticity, list price range (fen)
    "bakery": (0.25, 0.45, -2.2, (800, 3_000)),
    "fresh": (0.25, 0.60, -1.8, (1_000, 6_000)),
    "fashion": (0.50, 0.40, -1.2, (5_000, 40_000)),
}
HOUR = np.array([.05, .02, .01, .01, .01, .03, .10, .30, .50, .60, .70, 1.0, 1.2, .90, .60, .55, .60, .70,
                 .90, 1.3, 1.4, 1.1, .60, .20])                    # Shanghai hours 0–23
RULES = {
    "bakery": RuleConfig(evening=True, evening_hour=19, evening_off_bp=2000),
    "fresh": RuleConfig(evening=True, evening_hour=20, evening_off_bp=1500, stock=True, slow_days=10,
                        clear_off_bp=1000),
    "fashion": RuleConfig(stock=True, slow_days=60, clear_off_bp=1500),
}


def make_skus(n: int, rng: np.random.Generator) -> list[dict[str, object]]:
    kinds = rng.choice(list(KINDS), size=n, p=[k[0] for k in KINDS.values()])
    pop = 1 / np.arange(1, n + 1) ** 1.1
    pop = pop / pop.sum() * n * 0.6                                   # mean 0.6 units a day at list price
    rng.shuffle(pop)
    out = []
    for i in range(n):
        _, cost_ratio, e, (lo, hi) = KINDS[str(kinds[i])]
        price = int(rng.integers(lo // 10, hi // 10)) * 10
        out.append({"id": i + 1, "kind": str(kinds[i]), "list": price, "cost": int(price * cost_ratio),
                    "e": e * rng.uniform(0.8, 1.2), "rate": float(pop[i]), "stock": int(rng.integers(5, 400))})
    return out


def history(skus: list[dict[str, object]], start: datetime, days: int, rng: np.random.Generator
            ) -> dict[int, list[HourObs]]:
    out: dict[int, list[HourObs]] = {}
    for s in skus:
        lst, e, rate = int(s["list"]), float(s["e"]), float(s["rate"])  # type: ignore[call-overload]
        series = []
        for d in range(days):
            price = int(lst * (1 - rng.uniform(0.1, 0.3))) if rng.random() < 0.25 else lst
            day = start + timedelta(days=d)
            weekend = 1.25 if (day + timedelta(hours=8)).weekday() >= 5 else 1.0
            lam = rate / HOUR.sum() * HOUR * weekend * (price / lst) ** e
            units = rng.poisson(lam)
            for h in range(24):
                series.append(HourObs(day + timedelta(hours=h), price, int(units[h]), int(rng.poisson(lam[h] * 2))))
        out[int(s["id"])] = series  # type: ignore[call-overload]
    return out


def rails(s: dict[str, object]) -> Rails:
    return Rails(int(s["cost"]), 1000, int(s["list"]), 1000, 3000)  # type: ignore[call-overload]


def ab_test(skus: list[dict[str, object]], start: datetime, rules_on: bool, rng: np.random.Generator,
            unit: str = "sku") -> Readout:
    """14 days of a test from `start`; a SKU split also sells the 14 days before at list
    price, for the SKU-against-itself test (rules_pricing.SkuLift)."""
    salt, share = "bench", 5000
    visitors: dict[str, list[int]] = {"test": [], "control": []}
    margin = {"test": 0, "control": 0}
    pairs: dict[str, list[tuple[int, int]]] = {"test": [], "control": []}
    for s in skus:
        sid, lst, e, cost = int(s["id"]), int(s["list"]), float(s["e"]), int(s["cost"])  # type: ignore[call-overload]
        sku_arm = arm_of(salt, sid, share)
        cfg = RULES[str(s["kind"])]
        shadow = history([s], start, 14, rng)[sid]       # the days' demand, for the rule's signals
        path = [lst] * len(shadow)
        if rules_on and (unit == "day" or sku_arm == "test"):   # the price path the job would set, hour by hour
            price, day, day_open = lst, None, lst
            window: list[HourObs] = []
            for i, h in enumerate(shadow):
                sig = Signals(h.at, int(s["stock"]), sum(w.units for w in window[-168:]), 0, 0)  # type: ignore[call-overload]
                d = day_start(h.at)
                if d != day:
                    day, day_open = d, price
                new = guard(propose(lst, cfg, sig).target_fen, price, day_open, rails(s))
                price = new if new is not None else price
                path[i] = price
                window.append(h)
        base_rate = float(s["rate"]) / HOUR.sum()  # type: ignore[arg-type]

        def visits(at: datetime, price: int) -> list[int]:
            """Each visitor of that hour: the price paid, 0 for none."""
            n = int(rng.poisson(base_rate * HOUR[(at + timedelta(hours=8)).hour] * 6))   # 6 visitors a unit at list
            p_buy = min(1.0, (1 / 6) * (price / lst) ** e)
            return [price if rng.random() < p_buy else 0 for _ in range(n)]

        during = 0
        for i, h in enumerate(shadow):
            arm = arm_of(salt, block_of(h.at), share) if unit == "day" else sku_arm
            if arm == "control":
                path[i] = lst                               # control days: the base price
            for paid in visits(h.at, path[i]):
                visitors[arm].append(paid)
                during += paid
                margin[arm] += paid - cost if paid else 0
        if unit == "sku":
            before = sum(sum(visits(h.at, lst)) for h in history([s], start - timedelta(days=14), 14, rng)[sid])
            pairs[sku_arm].append((during, before))
    stats = {a: ArmStats(len(v), sum(1 for x in v if x), sum(v), margin[a], tuple(v)) for a, v in visitors.items()}
    return readout(stats["test"], stats["control"], (pairs["test"], pairs["control"]) if unit == "sku" else None)


async def through_the_service(backend: str, skus: list[dict[str, object]], hist: dict[int, list[HourObs]],
                              now: datetime) -> None:
    """The same history as orders in a database (SQLite file or a PostgreSQL schema): the
    console's preview (history read + elasticity + replay), the job's pass over every rule
    (and a second pass in the same bucket: nothing to do) and the A/B readout, timed."""
    import asyncio  # noqa: F401
    import uuid

    from sqlalchemy import insert

    from social_mall.demo import DemoCredentials, seed_demo
    from social_mall_intelligence import pricing as P
    from social_mall_intelligence.models import PriceRule, PriceTest
    from storage.db import create_engine, migrate, session_factory
    from storage.models import AuditEntry, Category, Member, Order, OrderLine, Product, Sku
    from storage.uow import uow_factory

    schema = ""
    if backend == "pg":
        schema = f"bench_pricing_{uuid.uuid4().hex[:8]}"
        await C.pg_create_schema(C.PG_URL, schema)
        url = C.PG_URL
    else:
        url = f"sqlite+aiosqlite:///{Path('/tmp') / f'bench_pricing_{uuid.uuid4().hex[:8]}.db'}"
    engine = create_engine(url, schema=schema)
    try:
        await migrate(engine)
        uows = uow_factory(session_factory(engine), {}, modules=["intelligence", "loyalty"])
        async with uows() as uow:
            tenant = (await seed_demo(uow, DemoCredentials("wx_bench", "t", "", "s"))).id
            cat = Category(tenant_id=tenant, name="bench")
            uow.session.add(cat)
            await uow.session.flush()
            sku_of: dict[int, int] = {}
            prod_of: dict[int, int] = {}
            for s in skus:
                prod = Product(tenant_id=tenant, category_id=cat.id, title=f"{s['kind']} {s['id']}")
                uow.session.add(prod)
                await uow.session.flush()
                row = Sku(tenant_id=tenant, product_id=prod.id, spec="", price_fen=int(s["list"]),  # type: ignore[call-overload]
                          stock=int(s["stock"]))  # type: ignore[call-overload]
                uow.session.add(row)
                await uow.session.flush()
                sku_of[int(s["id"])], prod_of[int(s["id"])] = row.id, prod.id  # type: ignore[call-overload]
                uow.session.add(PriceRule(tenant_id=tenant, sku_id=row.id, cost_fen=int(s["cost"]), min_margin_bp=1000,  # type: ignore[call-overload]
                                          ceiling_fen=int(s["list"]), base_fen=int(s["list"]), max_step_bp=1000,  # type: ignore[call-overload]
                                          max_day_bp=3000, params=RULES[str(s["kind"])].to_json(), enabled=True,
                                          created_at=now - timedelta(days=31), updated_at=now - timedelta(days=31)))
            await uow.session.execute(insert(Member), [dict(tenant_id=tenant, nickname=f"m{i}") for i in range(2000)])
            await uow.commit()
        async with uows() as uow:
            from sqlalchemy import select
            members = list((await uow.session.scalars(select(Member.id).where(Member.tenant_id == tenant))).all())
        rng = np.random.default_rng(5)
        orders, lines, audit, oid = [], [], [], 10_000_000
        for s in skus:
            sid = int(s["id"])  # type: ignore[call-overload]
            prev = int(s["list"])  # type: ignore[call-overload]
            for h in hist[sid]:                                   # the merchant's price edits, as the console audits them
                if h.price_fen != prev:
                    audit.append(dict(tenant_id=tenant, actor="admin:bench", action="sku.update",
                                      subject=f"sku:{sku_of[sid]}", before={"price_fen": prev},
                                      after={"price_fen": h.price_fen}, at=h.at))
                    prev = h.price_fen
            for h in hist[sid]:
                for _ in range(h.units):
                    oid += 1
                    at = h.at + timedelta(minutes=int(rng.integers(0, 60)))
                    orders.append(dict(id=oid, tenant_id=tenant, order_no=f"B{oid}", member_id=int(rng.choice(members)),
                                       status="completed", goods_fen=h.price_fen, total_fen=h.price_fen,
                                       paid_fen=h.price_fen, created_at=at, expires_at=at + timedelta(minutes=30),
                                       paid_at=at))
                    lines.append(dict(tenant_id=tenant, order_id=oid, sku_id=sku_of[sid], product_id=prod_of[sid],
                                      title="x", price_fen=h.price_fen, qty=1, line_fen=h.price_fen))
        async with uows() as uow:
            for k in range(0, len(orders), 2000):
                await uow.session.execute(insert(Order), orders[k:k + 2000])
                await uow.session.execute(insert(OrderLine), lines[k:k + 2000])
            for k in range(0, len(audit), 2000):
                await uow.session.execute(insert(AuditEntry), audit[k:k + 2000])
            uow.session.add(PriceTest(tenant_id=tenant, name="bench", share_bp=5000, unit="day", salt="bench",
                                      started_at=now - timedelta(days=14)))
            await uow.commit()
        print(f"through the service on {backend}: {len(skus)} SKUs with rules, {len(orders)} orders and "
              f"{len(audit)} merchant price edits over 30 days")
        async with uows() as uow:
            rule_ids = [r.id for r in (await P.list_rules(uow, tenant))[:20]]
        times = []
        for rid in rule_ids:
            t0 = time.perf_counter()
            async with uows() as uow:
                v = await P.preview(uow, tenant, rid, now)
            times.append(time.perf_counter() - t0)
        times.sort()
        print(f"  console preview (read 30 days, elasticity {v.elasticity.value:.2f} over {v.elasticity.skus} SKUs, replay): "
              f"median {1000 * times[len(times) // 2]:.0f} ms, max {1000 * times[-1]:.0f} ms over {len(times)} rules")
        evening = now + timedelta(hours=4, minutes=30)          # 20:30 in Shanghai
        for label in ("first pass", "same bucket again"):
            t0 = time.perf_counter()
            done = await P.run_all(uows, evening)
            dt = time.perf_counter() - t0
            print(f"  job, {label}: {len(done)} price changes, {1000 * dt:.0f} ms for {len(skus)} rules "
                  f"({1000 * dt / len(skus):.1f} ms a rule)")
        t0 = time.perf_counter()
        async with uows() as uow:
            [t] = await P.tests(uow, tenant, now)
        r = t.readout
        print(f"  A/B readout by day over 14 days ({1000 * (time.perf_counter() - t0):.0f} ms): conversion "
              f"{100 * r.test.conversion:.1f} % vs {100 * r.control.conversion:.1f} % (visitors {r.test.visitors} / "
              f"{r.control.visitors}: history has orders only, so every visitor bought), revenue/visitor "
              f"¥{r.test.revenue_per_visitor_fen / 100:.2f} vs ¥{r.control.revenue_per_visitor_fen / 100:.2f}, "
              f"Welch t = {r.t:.2f}, p = {r.p_revenue:.3f}")
    finally:
        await engine.dispose()
        if backend == "pg":
            await C.pg_drop_schema(C.PG_URL, schema)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--skus", type=int, default=300)
    ap.add_argument("--seed", type=int, default=22)
    ap.add_argument("--db", choices=("sqlite", "pg", "none"), default="sqlite",
                    help="also load the history as orders and time the service's preview, job and readout")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    now = datetime(2026, 12, 1, 16, tzinfo=UTC)                      # 00:00 Shanghai
    start = now - timedelta(days=30)
    skus = make_skus(args.skus, rng)
    t0 = time.perf_counter()
    hist = history(skus, start, 30, rng)
    t_gen = time.perf_counter() - t0
    units = sum(h.units for series in hist.values() for h in series)
    top = sorted((sum(h.units for h in series) for series in hist.values()), reverse=True)
    print(f"history: {args.skus} SKUs × 30 days × 24 h, {units} units; top 10 % of SKUs sell "
          f"{100 * sum(top[:max(len(top) // 10, 1)]) / max(units, 1):.0f} % of units (generated in {t_gen:.1f} s)")

    daily = []
    for s in skus:
        series = hist[int(s["id"])]  # type: ignore[call-overload]
        for d in range(30):
            day = series[d * 24:(d + 1) * 24]
            daily.append((int(s["id"]), day[12].price_fen, float(sum(h.units for h in day))))  # type: ignore[call-overload]
    t0 = time.perf_counter()
    est = estimate_elasticity(daily)
    t_est = time.perf_counter() - t0
    ols = estimate_elasticity(daily, method="ols")
    true_mean = sum(float(s["e"]) * sum(h.units for h in hist[int(s["id"])]) for s in skus) / max(units, 1)  # type: ignore[call-overload]
    print(f"elasticity, log-log model with SKU fixed effects ({est.observations} SKU-days, {est.skus} SKUs that sold): "
          f"Poisson PML {est.value:.2f} ({t_est * 1000:.0f} ms), OLS of ln(units+0.5) {ols.value:.2f}; "
          f"true, unit-weighted {true_mean:.2f}")
    for kind in KINDS:
        k_daily = [o for o in daily if skus[o[0] - 1]["kind"] == kind]
        k_true = [float(s["e"]) for s in skus if s["kind"] == kind]  # type: ignore[arg-type]
        print(f"  {kind:8s} Poisson PML {estimate_elasticity(k_daily).value:.2f}, "
              f"OLS {estimate_elasticity(k_daily, method='ols').value:.2f}, true mean {sum(k_true) / len(k_true):.2f}")

    print("preview over the 30 days (baseline: no rule = what history sold), per kind of SKU:")
    print(f"  {'kind':8s} {'rule':28s} {'revenue':>12s} {'projected':>12s} {'Δ%':>6s} {'margin':>11s} "
          f"{'projected':>11s} {'Δ%':>6s} {'truth Δrev%':>11s} {'changes':>7s}")
    t_prev = 0.0
    for kind, cfg in RULES.items():
        rev = prev = mar = pmar = trev = 0
        changes = 0
        for s in (s for s in skus if s["kind"] == kind):
            t0 = time.perf_counter()
            p = simulate(hist[int(s["id"])], int(s["list"]), cfg, rails(s), int(s["stock"]), est.value, 4)  # type: ignore[call-overload]
            t_prev += time.perf_counter() - t0
            truth = simulate(hist[int(s["id"])], int(s["list"]), cfg, rails(s), int(s["stock"]), float(s["e"]), 4)  # type: ignore[call-overload]
            rev += p.revenue_fen
            prev += p.projected_revenue_fen
            mar += p.margin_fen
            pmar += p.projected_margin_fen
            trev += truth.projected_revenue_fen
            changes += p.changes
        print(f"  {kind:8s} {'+'.join(cfg.kinds()):28s} {rev / 100:12,.0f} {prev / 100:12,.0f} "
              f"{100 * (prev - rev) / max(rev, 1):+6.1f} {mar / 100:11,.0f} {pmar / 100:11,.0f} "
              f"{100 * (pmar - mar) / max(abs(mar), 1):+6.1f} {100 * (trev - rev) / max(rev, 1):+11.1f} {changes:7d}")
    print(f"  preview cost: {1000 * t_prev / len(skus):.1f} ms a SKU (720 hours × 4 steps of 15 min, as the job)")

    # A/B: 14 days, the rules on half of the SKUs; then the same days with no rule anywhere (A/A)
    for label, rules_on, unit in (("A/B by SKU", True, "sku"), ("A/A by SKU (no rule in either arm)", False, "sku"),
                                  ("A/B by day", True, "day"), ("A/A by day (no rule in either arm)", False, "day")):
        r = ab_test(skus, now, rules_on, np.random.default_rng(args.seed + 1), unit)
        print(f"{label}, 14 days, 50 % (visitor = a member who carted or ordered):")
        for name, a in (("test", r.test), ("control", r.control)):
            print(f"  {name:8s} visitors {a.visitors:6d}  buyers {a.buyers:5d}  conversion {100 * a.conversion:5.2f} %  "
                  f"revenue/visitor ¥{a.revenue_per_visitor_fen / 100:6.2f}  margin ¥{a.margin_fen / 100:10,.0f}")
        print(f"  conversion: two-proportion z = {r.z:.2f}, p = {r.p_conversion:.4f}; revenue per visitor: "
              f"Welch t = {r.t:.2f} (df {r.df:.0f}), p = {r.p_revenue:.4f}")
        if r.sku is not None:
            print(f"  each SKU against its own 14 days before: test {100 * r.sku.lift_test:+.1f} % "
                  f"({r.sku.skus_test} SKUs), control {100 * r.sku.lift_control:+.1f} % ({r.sku.skus_control}), "
                  f"Welch t = {r.sku.t:.2f} (df {r.sku.df:.0f}), Student p = {r.sku.p:.4f}")
        if not math.isfinite(r.z):
            raise SystemExit("bad statistics")
    if args.db != "none":
        import asyncio

        asyncio.run(through_the_service(args.db, skus, hist, now))


if __name__ == "__main__":
    main()
