"""Group-buy rules and the chat flow's table (pure, no I/O)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flows.engine import Conv, Flows, Intent
from flows import home
from flows.groupbuy import FLOW, Close, Extend, Place, Preview, St
from flows.groupbuy_group import parse
from flows.types import Inbound, Kind
from social_mall.groupbuy import rules
from social_mall.groupbuy.rules import SeatStatus, TeamStatus

T0 = datetime(2026, 6, 1, tzinfo=timezone.utc)


def test_team_transition_table_is_the_documented_one():
    assert rules.can_move_team("forming", "succeeded") and rules.can_move_team("forming", "failed")
    assert rules.can_move_team("failed", "refunding") and rules.can_move_team("refunding", "refunded")
    assert not rules.can_move_team("succeeded", "failed")
    assert not rules.can_move_team("forming", "refunding")
    assert not rules.can_move_team("refunded", "forming")
    assert all(not rules.TEAM_MOVES[s] for s in (TeamStatus.SUCCEEDED, TeamStatus.REFUNDED))


def test_seat_transition_table():
    assert rules.can_move_seat("held", "paid") and rules.can_move_seat("held", "released")
    assert rules.can_move_seat("paid", "refunding") and rules.can_move_seat("refunding", "refunded")
    assert rules.can_move_seat("paid", "refunded")              # the merchant refunded a paid seat
    assert not rules.can_move_seat("released", "held")
    assert not rules.can_move_seat("paid", "released")
    assert set(rules.SEAT_MOVES) == set(SeatStatus)


def terms(**kw):
    base = dict(team_size=3, lifetime_hours=24, starts_at=T0, ends_at=T0 + timedelta(days=7),
                max_teams_per_member=0, max_qty=5, leader_discount_fen=0, simulated=False)
    base.update(kw)
    return rules.CampaignTerms(**base)


@pytest.mark.parametrize("field,value", [("team_size", 1), ("team_size", 101), ("lifetime_hours", 0),
                                         ("max_qty", 0), ("leader_discount_fen", -1)])
def test_bad_terms_are_named(field, value):
    assert rules.check_terms(terms(**{field: value})) == [field]


def test_terms_window_and_sizes_at_the_edges_are_fine():
    assert rules.check_terms(terms(team_size=2)) == [] and rules.check_terms(terms(team_size=100)) == []
    assert rules.check_terms(terms(ends_at=T0)) == ["ends_at"]


def test_leader_price_never_reaches_zero():
    assert rules.unit_price(6600, leader=True, leader_discount_fen=500) == 6100
    assert rules.unit_price(6600, leader=False, leader_discount_fen=500) == 6600
    assert rules.unit_price(100, leader=True, leader_discount_fen=500) == 1


@given(st.integers(2, 100), st.integers(0, 100), st.booleans())
def test_expiry_decision(size, paid, simulated):
    paid = min(paid, size - 1)
    decision, virtual = rules.on_expiry(size=size, paid=paid, simulated=simulated)
    if simulated and paid >= 1:
        assert decision == rules.Expiry.SUCCEED_SIMULATED and paid + virtual == size
    else:
        assert decision == rules.Expiry.FAIL and virtual == 0
    # every seat paid (the last payments counted at expiry): a real success, whatever the campaign
    assert rules.on_expiry(size=size, paid=size, simulated=simulated) == (rules.Expiry.SUCCEED, 0)


def test_team_never_outlives_its_campaign():
    assert rules.team_expiry(T0, 24, T0 + timedelta(hours=5)) == T0 + timedelta(hours=5)
    assert rules.team_expiry(T0, 24, T0 + timedelta(days=5)) == T0 + timedelta(hours=24)


def test_extend_within_the_campaign_rules():
    kw = dict(created_at=T0, lifetime_hours=24, max_extend_hours=24, campaign_ends_at=T0 + timedelta(days=7))
    assert rules.check_extend(expires_at=T0 + timedelta(hours=24), hours=24, **kw) == T0 + timedelta(hours=48)
    assert rules.check_extend(expires_at=T0 + timedelta(hours=24), hours=25, **kw) is None
    assert rules.check_extend(expires_at=T0 + timedelta(hours=24), hours=0, **kw) is None


def test_time_left_and_scenes():
    assert rules.time_left(T0 + timedelta(hours=5, minutes=7, seconds=30), T0) == (5, 7)
    assert rules.time_left(T0, T0 + timedelta(hours=1)) == (0, 0)
    assert rules.team_of_scene(rules.team_scene(42)) == 42
    assert rules.team_of_scene("gb_x1") is None and rules.team_of_scene("ref_42") is None
    assert rules.team_of_source(rules.team_source(7)) == 7 and rules.team_of_source("chat") is None


# -- the flow table ----------------------------------------------------------------------

FLOWS = Flows(home.FLOW, [FLOW])


def said(text, conv):
    return FLOWS.parse(Inbound(1, "demo", "mp", "o", Kind.TEXT, text=text), conv)


def step(conv, text):
    flow, turn, fn = FLOWS.decide(conv, said(text, conv))
    return fn(turn)


def test_keyword_lists_campaigns_from_anywhere():
    s = step(FLOWS.idle(), "拼团")
    assert s.to == St.LIST and s.command is not None


def test_scene_lands_on_the_team():
    conv = FLOWS.idle()
    sd = FLOWS.parse(Inbound(1, "demo", "mp", "o", Kind.SUBSCRIBE, payload={"scene": "gb_12"}), conv)
    flow, turn, fn = FLOWS.decide(conv, sd)
    s = fn(turn)
    assert s.to == St.TEAM and s.command.team_id == 12


def test_confirm_places_and_a_number_changes_quantity():
    conv = Conv("groupbuy", St.CONFIRM, {"campaign": 3, "team": 9, "sku": 5, "qty": 1})
    s = step(conv, "确认")
    assert isinstance(s.command, Place) and (s.command.team_id, s.command.qty) == (9, 1)
    s = step(conv, "3")
    assert isinstance(s.command, Preview) and s.command.qty == 3
    s = step(conv, "开团")
    assert s.data == {"campaign": 3, "team": 0}


def test_address_in_one_line_or_asked_again():
    conv = Conv("groupbuy", St.ADDRESS, {"campaign": 3, "team": 9, "sku": 5, "qty": 1})
    s = step(conv, "王小明 13912345678 深圳市南山区科技园1号")
    assert isinstance(s.command, Place) and s.command.new_address == ("王小明", "13912345678", "深圳市南山区科技园1号")
    s = step(conv, "王小明")
    assert s.command is None and s.to == St.ADDRESS


def test_leader_tools():
    conv = Conv("groupbuy", St.LEAD, {"team": 4})
    assert isinstance(step(conv, "关团").command, Close)
    s = step(conv, "延长 2")
    assert isinstance(s.command, Extend) and s.command.hours == 2


def test_cancel_leaves_the_flow():
    conv = Conv("groupbuy", St.CONFIRM, {"campaign": 3, "team": 9, "sku": 5, "qty": 1})
    assert step(conv, "取消").flow == "home"


@pytest.mark.parametrize("text,expected", [
    ("@机器人 开团 丹东草莓", ("open", "丹东草莓")), ("参团", ("join", "")), ("参团 2", ("join", "2")),
    ("2", ("join", "2")), ("今天天气不错", ("", "")), ("@机器人 你好", ("help", "")),
    ("绑定", ("bind", "")), ("@机器人 绑定公众号", ("bind", "")), ("绑定一下试试", ("", "")),
])
def test_group_message_parsing(text, expected):
    assert parse(text, "机器人") == expected
