"""Campaigns to a segment (filled in below)."""

from __future__ import annotations

from typing import Any

from social_mall.plugins import Registry


def register(reg: Registry, svc: Any) -> None:
    return None
