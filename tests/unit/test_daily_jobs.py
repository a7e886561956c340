"""The registry's daily jobs (Registry.add_daily_job): a cron trigger at the wall-clock
time in its own zone, which the scheduler in bot.py uses as is; interval jobs unchanged."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone

import pytest
from apscheduler.triggers.cron import CronTrigger

from social_mall.plugins import Registry

SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")


async def nothing() -> None:
    return None


def test_a_daily_job_fires_at_its_time_of_day_in_its_zone_and_an_interval_job_stays_one():
    reg = Registry(services=None)
    reg.add_daily_job("nightly", time(3, 0, tzinfo=SHANGHAI), nothing)
    reg.add_job("sweep", 30, nothing)
    daily, sweep = reg.jobs
    assert sweep.trigger() == ("interval", {"seconds": 30})
    kind, when = daily.trigger()
    assert kind == "cron"
    at = datetime(2026, 12, 4, 18, 0, tzinfo=timezone.utc)   # 02:00 in Shanghai
    assert CronTrigger(**when).get_next_fire_time(None, at) == datetime(2026, 12, 4, 19, 0, tzinfo=timezone.utc)


def test_a_daily_job_without_a_zone_is_refused():
    reg = Registry(services=None)
    with pytest.raises(ValueError):
        reg.add_daily_job("nightly", time(3, 0), nothing)
    assert reg.jobs == []
