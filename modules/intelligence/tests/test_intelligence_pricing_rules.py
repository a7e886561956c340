"""Dynamic pricing's pure rules: the guard rails as properties (never below the floor,
never above the ceiling, step and day caps, no raise when told), what each signal asks
for, the elasticity estimate, the preview's replay and the A/B statistics."""

from __future__ import annotations

import math
import random
from datetime import date, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from social_mall_intelligence.rules_pricing import (
    ArmStats,
    HourObs,
    Rails,
    RuleConfig,
    Signals,
    arm_of,
    estimate_elasticity,
    guard,
    propose,
    readout,
    simulate,
    two_proportion_z,
    welch_t,
)

UTC = timezone.utc
NOON_SH = datetime(2026, 12, 3, 4, 0, tzinfo=UTC)      # 12:00 in Shanghai
EVENING_SH = datetime(2026, 12, 3, 12, 30, tzinfo=UTC)  # 20:30 in Shanghai
QUIET = Signals(NOON_SH, stock=10, sold_7d=70, recent_events=0, events_7d=0)

rails_st = st.builds(
    Rails,
    cost_fen=st.integers(1, 100_000), min_margin_bp=st.integers(0, 20_000), ceiling_fen=st.integers(1, 400_000),
    max_step_bp=st.integers(0, 5_000), max_day_bp=st.integers(0, 9_000),
)


@settings(max_examples=600, deadline=None)
@given(r=rails_st, target=st.integers(-10, 500_000), current=st.integers(1, 500_000),
       day_open=st.integers(1, 500_000), no_raise=st.booleans())
def test_guard_rails_hold_for_every_price_a_rule_sets(r, target, current, day_open, no_raise):
    new = guard(target, current, day_open, r, no_raise=no_raise)
    if new is None:
        return
    assert new != current
    assert r.floor_fen <= new <= r.ceiling_fen                    # never below floor, never above ceiling
    assert new * 10_000 >= r.cost_fen * (10_000 + r.min_margin_bp)
    if no_raise:
        assert new < current
    if r.floor_fen <= current <= r.ceiling_fen:                   # inside the band: the step and day caps
        assert abs(new - current) <= current * r.max_step_bp // 10_000
        assert abs(new - day_open) <= day_open * r.max_day_bp // 10_000


@settings(max_examples=200, deadline=None)
@given(r=rails_st, target=st.integers(1, 500_000), start=st.integers(1, 500_000))
def test_repeated_steps_converge_inside_the_band_and_never_overshoot(r, target, start):
    price, seen = start, 0
    for _ in range(20_000):
        new = guard(target, price, start, r)
        if new is None:
            break
        if r.floor_fen <= price <= r.ceiling_fen:
            assert min(price, target) <= new <= max(price, target) or not (r.floor_fen <= target <= r.ceiling_fen)
        price, seen = new, seen + 1
    assert guard(target, price, start, r) is None                 # a fixed point: a second run changes nothing


def test_a_merchant_price_below_the_floor_is_brought_up_to_it_but_not_inside_a_promotion():
    r = Rails(cost_fen=1000, min_margin_bp=2000, ceiling_fen=3000, max_step_bp=500, max_day_bp=1000)
    assert r.floor_fen == 1200
    assert guard(900, 1000, 1000, r) == 1200
    assert guard(900, 1000, 1000, r, no_raise=True) is None
    assert guard(1100, 1500, 1500, r) == 1425                    # 5 % step down, not to the target
    assert guard(9999, 1500, 1500, r, no_raise=True) is None      # a raise refused


def test_each_signal_moves_the_target_and_says_why():
    assert propose(10_000, RuleConfig(), QUIET) == propose(10_000, RuleConfig(stock=True), QUIET)
    assert propose(10_000, RuleConfig(), QUIET).target_fen == 10_000
    slow = Signals(NOON_SH, stock=500, sold_7d=7, recent_events=0, events_7d=0)   # 500 days of cover
    assert propose(10_000, RuleConfig(stock=True), slow).target_fen == 8_500
    dead = Signals(NOON_SH, stock=3, sold_7d=0, recent_events=0, events_7d=0)
    assert propose(10_000, RuleConfig(stock=True), dead).reasons == ("stock",)
    expiry = RuleConfig(expiry=True, expires_on=date(2026, 12, 4), expiry_days=3, expiry_off_bp=4000)
    assert propose(10_000, expiry, QUIET).target_fen == 10_000 - 4000 * 3 // 4   # one day left
    assert propose(10_000, replace_day(expiry, date(2026, 12, 3)), QUIET).target_fen == 6_000   # last day: all of it
    assert propose(10_000, replace_day(expiry, date(2026, 12, 10)), QUIET).target_fen == 10_000
    evening = RuleConfig(evening=True, evening_hour=19, evening_off_bp=2000)
    assert propose(10_000, evening, QUIET).target_fen == 10_000
    assert propose(10_000, evening, Signals(EVENING_SH, 10, 70, 0, 0)).reasons == ("evening",)
    demand = RuleConfig(demand=True, demand_hours=6, demand_ratio_pct=200, demand_min_events=3, demand_up_bp=1000)
    hot = Signals(NOON_SH, 10, 70, recent_events=12, events_7d=168)   # 1/h usual: 12 in 6 h is 2×
    assert propose(10_000, demand, hot).target_fen == 11_000
    warm = Signals(NOON_SH, 10, 70, recent_events=11, events_7d=168)
    assert propose(10_000, demand, warm).target_fen == 10_000
    few = Signals(NOON_SH, 10, 70, recent_events=2, events_7d=0)     # below the minimum of events
    assert propose(10_000, demand, few).target_fen == 10_000


def replace_day(cfg: RuleConfig, d: date) -> RuleConfig:
    return RuleConfig.from_json({**cfg.to_json(), "expires_on": d.isoformat()})


def test_rule_config_round_trips_through_json_and_ignores_unknown_keys():
    cfg = RuleConfig(stock=True, expiry=True, expires_on=date(2027, 1, 2), evening_hour=18)
    assert RuleConfig.from_json({**cfg.to_json(), "nonsense": 1}) == cfg
    assert cfg.kinds() == ("stock", "expiry")


def test_elasticity_is_recovered_from_noisy_price_changes():
    rng = random.Random(7)
    obs = []
    for sku in range(40):
        scale = rng.uniform(20, 80)
        for day in range(30):
            fen = rng.choice([1000, 900, 800, 1100]) * (1 + sku % 3)
            mean = scale * (fen / (1000 * (1 + sku % 3))) ** -2.0
            obs.append((sku, fen, float(round(mean * math.exp(rng.gauss(0, 0.25))))))
    est = estimate_elasticity(obs)
    assert est.estimated and est.skus == 40
    assert -2.4 < est.value < -1.6, est


def test_no_price_variation_falls_back_to_the_default():
    est = estimate_elasticity([(1, 1000, 3.0), (1, 1000, 5.0), (2, 500, 1.0)])
    assert not est.estimated and est.value == -1.5


def test_the_preview_replays_an_evening_discount_and_projects_more_units():
    start = datetime(2026, 11, 1, 16, 0, tzinfo=UTC)   # 00:00 Shanghai
    hist = [HourObs(start + timedelta(hours=i), 1000, 2 if (i % 24) >= 19 else 1) for i in range(24 * 30)]
    cfg = RuleConfig(evening=True, evening_hour=19, evening_off_bp=2000)
    rails = Rails(cost_fen=500, min_margin_bp=1000, ceiling_fen=1200, max_step_bp=1000, max_day_bp=2500)
    p = simulate(hist, 1000, cfg, rails, stock_now=100, elasticity=-2.0)
    assert p.hours == 720 and p.revenue_fen == p.units * 1000
    assert p.min_price_fen == 800 and p.max_price_fen == 1000       # 10 % steps: 900, 810, 800 each evening
    assert 30 * 4 <= p.changes <= 30 * 6                            # down, and back up after midnight
    assert p.projected_units > p.units
    assert p.projected_margin_fen < p.margin_fen                     # elastic, but the margin is thin


def test_arms_are_stable_and_near_the_share():
    arms = [arm_of("s1", sku, 3000) for sku in range(10_000)]
    assert arms == [arm_of("s1", sku, 3000) for sku in range(10_000)]
    assert 2800 < arms.count("test") < 3200
    assert all(arm_of("s1", sku, 0) == "control" for sku in range(100))


def test_the_statistics_match_textbook_values():
    z, p = two_proportion_z(120, 1000, 90, 1000)
    assert math.isclose(z, 2.1888, abs_tol=1e-3) and math.isclose(p, 0.0286, abs_tol=1e-3)
    t, df, pt = welch_t([1, 2, 3, 4, 5], [2, 4, 6, 8, 10])
    assert math.isclose(t, -1.8974, abs_tol=1e-3) and math.isclose(df, 5.882, abs_tol=1e-2)
    r = readout(ArmStats(10, 3, 900, 300, (300, 300, 300) + (0,) * 7), ArmStats(10, 1, 300, 100, (300,) + (0,) * 9))
    assert r.test.conversion == 0.3 and r.control.revenue_per_visitor_fen == 30.0
    assert 0 < r.p_conversion < 1 and r.z > 0


def test_on_sparse_daily_counts_the_poisson_fit_recovers_elasticity_where_ols_of_logs_does_not():
    import numpy as np

    rng = np.random.default_rng(3)
    obs = []
    for sku in range(200):
        rate = rng.uniform(0.1, 2.0)                       # well under one sale a day: mostly zeros
        for day in range(30):
            fen = 1000 if rng.random() < 0.7 else int(1000 * rng.uniform(0.7, 0.9))
            obs.append((sku, fen, float(rng.poisson(rate * (fen / 1000) ** -1.8))))
    poisson, ols = estimate_elasticity(obs), estimate_elasticity(obs, method="ols")
    assert -2.2 < poisson.value < -1.4, poisson
    assert ols.value > poisson.value + 0.25, (ols, poisson)   # attenuated toward 0


def test_students_p_matches_the_tables():
    from social_mall_intelligence.rules_pricing import student_two_sided

    for t, df, p in [(2.228, 10, 0.05), (12.706, 1, 0.05), (3.0, 5, 0.0301), (2.0, 10, 0.0734), (1.96, 1e6, 0.05)]:
        assert abs(student_two_sided(t, df) - p) < 5e-4, (t, df)
    assert student_two_sided(0.0, 7) == 1.0 and student_two_sided(-2.228, 10) == student_two_sided(2.228, 10)


def test_an_aa_sku_split_is_significant_about_as_often_as_it_should_be_whatever_the_mix():
    """A/A: SKUs of wildly different sizes (lognormal scale), each selling by the same rate
    before and during; the SKU-against-itself test rejects at p < 0.05 about 5 % of the
    time (bench/dynamic_pricing.py shows revenue per visitor across the arms at t = 6.29
    in such a split: the mix)."""
    import numpy as np

    from social_mall_intelligence.rules_pricing import sku_lift

    rng = np.random.default_rng(22)
    rejected = 0
    runs = 400
    for _ in range(runs):
        rates = rng.lognormal(3.0, 1.5, 40)
        price = rng.integers(500, 20_000, 40)
        before = rng.poisson(rates) * price
        during = rng.poisson(rates) * price
        arm = rng.random(40) < 0.5
        test = [(int(d), int(b)) for d, b, a in zip(during, before, arm) if a]
        control = [(int(d), int(b)) for d, b, a in zip(during, before, arm) if not a]
        rejected += sku_lift(test, control).p < 0.05
    assert 0.02 <= rejected / runs <= 0.09, rejected / runs
