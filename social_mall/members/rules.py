"""Member rules: address validation, birthdays. Pure."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date

from social_mall.errors import InvalidAddressError, InvalidBirthdayError

PHONE = re.compile(r"^1[3-9]\d{9}$")
#: members.entry_source holds this much of where a member first came from (a QR scene:
#: WeChat's scene_str is 1–64 characters, so a genuine one always fits whole).
ENTRY_SOURCE_MAX = 80


def mask_phone(phone: str) -> str:
    """138****8000: what logs, audits and pages show of a phone number."""
    return phone[:3] + "****" + phone[-4:] if len(phone) >= 7 else "****"


def clean_address(name: str, phone: str, detail: str) -> tuple[str, str, str]:
    name, phone, detail = name.strip(), re.sub(r"[\s-]", "", phone), detail.strip()
    if not 1 <= len(name) <= 20:
        raise InvalidAddressError("name")
    if not PHONE.match(phone):
        raise InvalidAddressError("phone")
    if not 5 <= len(detail) <= 100:
        raise InvalidAddressError("detail")
    return name, phone, detail


# -- birthdays ------------------------------------------------------------------------------

MIN_BIRTH_YEAR = 1900
_SEPARATED = re.compile(r"(?:(\d{4})\s*[-/.年]\s*)?(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*[日号]?")
_COMPACT = re.compile(r"(\d{4})?(\d{2})(\d{2})")


@dataclass(frozen=True)
class Birthday:
    """Month and day (the year is optional: many people don't give it)."""

    month: int
    day: int
    year: int | None = None

    @property
    def text(self) -> str:
        """"05-01" or "1990-05-01" (what the member types)."""
        md = f"{self.month:02d}-{self.day:02d}"
        return f"{self.year:04d}-{md}" if self.year else md


def parse_birthday(raw: str, today: date) -> Birthday:
    """「05-01」「5/1」「5月1日」「0501」, with a year in front if given: 「1990-05-01」
    「1990年5月1日」「19900501」. A day the month doesn't have, a year before 1900 or a
    date after `today` raise InvalidBirthdayError. Feb 29 without a year is allowed."""
    text = raw.strip()
    m = _SEPARATED.fullmatch(text) or _COMPACT.fullmatch(text)
    if m is None:
        raise InvalidBirthdayError(text[:20])
    year = int(m.group(1)) if m.group(1) else None
    month, day = int(m.group(2)), int(m.group(3))
    try:
        born = date(year if year is not None else 2000, month, day)   # 2000: a leap year
    except ValueError:
        raise InvalidBirthdayError(text[:20]) from None
    if year is not None and (year < MIN_BIRTH_YEAR or born > today):
        raise InvalidBirthdayError(text[:20])
    return Birthday(month, day, year)


def celebrated_on(b: Birthday, year: int) -> date:
    """The day the shop celebrates `b` in `year`: Feb 29 falls on Feb 28 in common years."""
    if (b.month, b.day) == (2, 29) and not calendar.isleap(year):
        return date(year, 2, 28)
    return date(year, b.month, b.day)


def birthdays_on(today: date) -> tuple[tuple[int, int], ...]:
    """The (month, day) birthdays celebrated on `today`: the day itself, and Feb 29 on
    Feb 28 of a common year."""
    if (today.month, today.day) == (2, 28) and not calendar.isleap(today.year):
        return ((2, 28), (2, 29))
    return ((today.month, today.day),)
