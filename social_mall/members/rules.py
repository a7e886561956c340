"""Member rules: address validation. Pure."""

from __future__ import annotations

import re

from social_mall.errors import InvalidAddressError

PHONE = re.compile(r"^1[3-9]\d{9}$")


def clean_address(name: str, phone: str, detail: str) -> tuple[str, str, str]:
    name, phone, detail = name.strip(), re.sub(r"[\s-]", "", phone), detail.strip()
    if not 1 <= len(name) <= 20:
        raise InvalidAddressError("name")
    if not PHONE.match(phone):
        raise InvalidAddressError("phone")
    if not 5 <= len(detail) <= 100:
        raise InvalidAddressError("detail")
    return name, phone, detail
