"""Pure rules: coordinates, distances and bounding boxes, opening hours past midnight and
on holidays (Shanghai has no daylight saving: every day is 24 h), codes typed or scanned."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from handlers.wechat_mp import coordinate
from social_mall_local.codes import (
    BIND_ALPHABET, new_bind_code, new_ticket_code, parse_bind_code, parse_ticket_code, ticket_code_text,
)
from social_mall_local.geo import (
    Hours, Point, at_local, bounding_box, distance_m, distance_text, in_polygon, parse_point, parse_ranges,
)
from social_mall_local.tickets import split

SH = timezone(timedelta(hours=8))


def test_points_parse_strictly():
    assert parse_point("31.235470", "121.474790") == Point(31_235_470, 121_474_790)
    assert parse_point("-33.8", "151.2") == Point(-33_800_000, 151_200_000)
    for lat, lng in (("91", "1"), ("1", "181"), ("abc", "1"), ("1e2", "1"), ("0", "0"), ("３１.２", "121"),
                     ("31.1234567", "121"), ("", "")):
        assert parse_point(lat, lng) is None, (lat, lng)


def test_the_edge_reads_wechat_coordinates_or_nothing():
    assert coordinate("31.2354701", 90) == "31.235470"
    assert coordinate("-0.0000004", 90) == "0.000000"
    assert coordinate("121.4747905", 180) == "121.474791"
    for bad in ("", "1e5", "91", "²3.1", "23.", "nan", "31.2<x>"):
        assert coordinate(bad, 90) == "", bad


def test_distances_and_their_words():
    people_square, lujiazui = Point(31_235_470, 121_474_790), Point(31_236_060, 121_502_870)
    assert 2_600 < distance_m(people_square, lujiazui) < 2_700
    assert distance_m(people_square, people_square) == 0
    assert [distance_text(m) for m in (0, 999, 1_000, 1_049, 1_050, 9_949, 12_345)] == \
        ["0m", "999m", "1.0km", "1.0km", "1.1km", "9.9km", "12km"]


@given(st.integers(-60_000_000, 60_000_000), st.integers(-179_000_000, 179_000_000),
       st.integers(100, 50_000), st.floats(0, 6.283), st.floats(0, 1))
def test_the_bounding_box_holds_every_point_within_the_radius(lat, lng, radius, angle, frac):
    import math

    center = Point(lat, lng)
    r = radius * frac
    dlat = r * math.cos(angle) / 111_195
    dlng = r * math.sin(angle) / (111_195 * math.cos(math.radians(lat / 1e6)))
    p = Point(int(lat + dlat * 1e6), int(lng + dlng * 1e6))
    if distance_m(center, p) > radius:
        return
    lat_min, lat_max, lng_min, lng_max = bounding_box(center, radius)
    assert lat_min <= p.lat_e6 <= lat_max and lng_min <= p.lng_e6 <= lng_max


def test_polygons():
    square = [Point(0, 0), Point(0, 10), Point(10, 10), Point(10, 0)]
    assert in_polygon(Point(5, 5), square) and not in_polygon(Point(11, 5), square)


def test_hour_ranges_parse_past_midnight_and_refuse_nonsense():
    assert parse_ranges("09:00-21:00") == ((540, 1260),)
    assert parse_ranges("18:00-02:00") == ((1080, 1560),)
    assert parse_ranges("09:00-12:00，13:00-24:00") == ((540, 720), (780, 1440))
    assert parse_ranges("") == ()
    for bad in ("9-21", "25:00-26:00", "10:00-10:00", "09:00-12:00,11:00-13:00", "10:00-24:30", "abc"):
        assert parse_ranges(bad) is None, bad


def test_a_store_open_past_midnight_is_open_early_the_next_day_and_holidays_close_it():
    week = {str(d): [[600, 1320]] for d in range(1, 8)} | {"5": [[600, 1560]]}   # Fridays 10:00–02:00
    hours = Hours.from_json(week, {"2025-06-09": []})                           # Monday a holiday
    friday_night = datetime(2025, 6, 7, 1, 30, tzinfo=SH)                       # Saturday 01:30
    assert hours.open_at(friday_night)
    assert hours.closes_at(friday_night) == datetime(2025, 6, 7, 2, 0, tzinfo=SH)
    assert not hours.open_at(datetime(2025, 6, 7, 2, 0, tzinfo=SH))
    assert not hours.open_at(datetime(2025, 6, 8, 1, 30, tzinfo=SH))             # Saturday's close is 22:00
    assert not hours.open_at(datetime(2025, 6, 9, 12, 0, tzinfo=SH))             # the holiday
    assert hours.next_open(datetime(2025, 6, 9, 12, 0, tzinfo=SH)) == datetime(2025, 6, 10, 10, 0, tzinfo=SH)


def test_shanghai_days_are_always_24_hours():
    for day in (date(2025, 3, 9), date(2025, 3, 30), date(2025, 10, 26), date(2025, 11, 2)):  # DST dates elsewhere
        start, next_start = at_local(day, 0), at_local(day + timedelta(days=1), 0)
        assert next_start - start == timedelta(hours=24)
        assert at_local(day, 24 * 60 + 30) == next_start + timedelta(minutes=30)
        assert start.hour == 16 and start.tzinfo == timezone.utc


def test_ticket_codes_typed_or_scanned():
    assert parse_ticket_code("1234 5678 9012") == "123456789012"
    assert parse_ticket_code("１２３４-５６７８-９０１２") == "123456789012"           # full-width keypad
    assert parse_ticket_code("https://x.test/local/ticket?c=123456789012") == "123456789012"
    for bad in ("12345678901", "1234567890123", "123456789012３", "123456789012 123456789013", "", "abc"):
        assert parse_ticket_code(bad) is None, bad
    codes = {new_ticket_code() for _ in range(2000)}
    assert len(codes) == 2000 and all(len(c) == 12 and c.isdigit() for c in codes)
    assert ticket_code_text("123456789012") == "1234 5678 9012"


def test_bind_codes():
    code = new_bind_code()
    assert len(code) == 10 and set(code) <= set(BIND_ALPHABET)
    assert parse_bind_code(f"{code[:5].lower()}-{code[5:]}") == code
    assert parse_bind_code("ABCDE-FGHIO") is None      # I and O are not in the alphabet
    assert parse_bind_code("ABC") is None


@given(st.integers(0, 10**7), st.lists(st.integers(0, 10**6), min_size=1, max_size=12))
def test_shares_sum_exactly_and_never_go_negative(total, weights):
    parts = split(total, weights)
    assert all(p >= 0 for p in parts)
    assert sum(parts) == (total if sum(weights) else 0)
