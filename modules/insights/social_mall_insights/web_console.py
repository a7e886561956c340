from __future__ import annotations

from social_mall.plugins import Registry


def register(reg: Registry) -> None:
    return None
