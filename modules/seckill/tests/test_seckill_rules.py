"""Pure rules: phases, countdowns, pool names."""

from datetime import datetime, timedelta, timezone

from social_mall_seckill.rules import Phase, countdown, item_of_pool, phase, pool

T = datetime(2030, 1, 1, 12, tzinfo=timezone.utc)


def test_phase_is_upcoming_live_then_ended():
    end = T + timedelta(hours=1)
    assert phase(T, end, T - timedelta(seconds=1)) == Phase.UPCOMING
    assert phase(T, end, T) == Phase.LIVE
    assert phase(T, end, end - timedelta(microseconds=1)) == Phase.LIVE
    assert phase(T, end, end) == Phase.ENDED


def test_countdown_reads_hours_minutes_seconds_and_never_goes_negative():
    assert countdown(timedelta(hours=1, minutes=2, seconds=3)) == "01:02:03"
    assert countdown(timedelta(hours=26)) == "26:00:00"
    assert countdown(timedelta(seconds=-5)) == "00:00:00"


def test_pool_names_round_trip_and_refuse_others():
    assert item_of_pool(pool(42)) == 42
    assert item_of_pool("team:42") is None and item_of_pool("seckill:４２") is None
