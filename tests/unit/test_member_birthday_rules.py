"""Birthdays: what members may type, and on which day the shop celebrates them (Feb 29
birthdays on Feb 28 of a common year). Pure rules, no I/O."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from social_mall.errors import InvalidBirthdayError
from social_mall.members.rules import Birthday, birthdays_on, celebrated_on, parse_birthday

TODAY = date(2025, 6, 1)


@pytest.mark.parametrize(("typed", "expected"), [
    ("05-01", Birthday(5, 1)),
    ("5-1", Birthday(5, 1)),
    ("5/1", Birthday(5, 1)),
    ("5月1日", Birthday(5, 1)),
    ("0501", Birthday(5, 1)),
    ("02-29", Birthday(2, 29)),
    ("1990-05-01", Birthday(5, 1, 1990)),
    ("1990/5/1", Birthday(5, 1, 1990)),
    ("1990年5月1日", Birthday(5, 1, 1990)),
    ("19900501", Birthday(5, 1, 1990)),
    ("2000-02-29", Birthday(2, 29, 2000)),
])
def test_birthday_is_read_in_the_usual_ways(typed: str, expected: Birthday):
    assert parse_birthday(typed, TODAY) == expected


@pytest.mark.parametrize("typed", [
    "", "abc", "13-01", "00-10", "04-31", "02-30", "1990-02-29", "1899-12-31", "2025-06-02", "2030-01-01", "5-",
    "1990-05-01-01",
])
def test_a_date_that_cannot_be_a_birthday_is_refused(typed: str):
    with pytest.raises(InvalidBirthdayError):
        parse_birthday(typed, TODAY)


def test_text_is_what_the_member_would_type():
    assert Birthday(5, 1).text == "05-01"
    assert Birthday(5, 1, 1990).text == "1990-05-01"


def test_feb_29_is_celebrated_on_feb_28_in_a_common_year():
    leapling = Birthday(2, 29, 2000)
    assert celebrated_on(leapling, 2027) == date(2027, 2, 28)
    assert celebrated_on(leapling, 2028) == date(2028, 2, 29)
    assert celebrated_on(Birthday(2, 28), 2028) == date(2028, 2, 28)
    assert birthdays_on(date(2027, 2, 28)) == ((2, 28), (2, 29))
    assert birthdays_on(date(2027, 3, 1)) == ((3, 1),)
    assert birthdays_on(date(2028, 2, 28)) == ((2, 28),)      # the leap year has its own Feb 29
    assert birthdays_on(date(2028, 2, 29)) == ((2, 29),)


@pytest.mark.parametrize("year", [2027, 2028, 2100])            # common, leap, century (not leap)
def test_every_birthday_is_celebrated_exactly_once_a_year(year: int):
    days = [date(year, 1, 1) + timedelta(days=i) for i in range(366)]
    days = [d for d in days if d.year == year]
    seen: dict[tuple[int, int], list[date]] = {}
    for d in days:
        for key in birthdays_on(d):
            seen.setdefault(key, []).append(d)
    every = {(d.month, d.day) for d in (date(2000, 1, 1) + timedelta(days=i) for i in range(366))}
    assert set(seen) == every                                   # 366 birthdays, Feb 29 included
    for (m, d), on in seen.items():
        assert on == [celebrated_on(Birthday(m, d), year)]
